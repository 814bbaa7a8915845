/**
 * What UForge organises around a user and Kiln does not have: an organisation, quotas and
 * categories. Kiln answers what is true of it — every user belongs to one organisation (the
 * server itself), nothing is counted against a quota, and no category is defined — so that
 * UForge's clients, which ask, get well-formed answers (hammr takes the first org's id).
 */
import { fail } from "../domain/errors.js";
import type { Category, Org, Quota } from "../wire/index.js";

/** The one organisation of a Kiln server. */
export const KILN_ORG_ID = 1;
const KILN_ORG_NAME = "kiln";

export const orgUris = {
  org: (id: number) => `orgs/${id}`,
  categories: (id: number) => `orgs/${id}/categories`,
};

export function organisationOperations() {
  return {
    /** The organisations a user belongs to: the server's own, of which every user is a member. */
    orgs(admin: boolean, name?: string): Org[] {
      const org: Org = {
        dbId: KILN_ORG_ID,
        name: KILN_ORG_NAME,
        defaultOrg: true,
        admin,
        activateNewUsers: true,
        categoriesUri: orgUris.categories(KILN_ORG_ID),
        uri: orgUris.org(KILN_ORG_ID),
      };
      return name === undefined || name === "" || name === org.name ? [org] : [];
    },

    /** Kiln counts nothing against a user: no quota applies (UForge's clients show "No quotas available"). */
    quotas(): Quota[] {
      return [];
    },

    /** The categories of organisation `oid`: Kiln defines none. */
    categories(oid: number): Category[] {
      if (oid !== KILN_ORG_ID) fail("notFound", `no organisation ${oid}`);
      return [];
    },
  };
}

export type OrganisationOperations = ReturnType<typeof organisationOperations>;
