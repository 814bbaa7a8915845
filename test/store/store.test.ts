/**
 * The store's shared suite: every operation of every repository, run unchanged on SQLite and on
 * PostgreSQL (each in a database created for the run). Each test makes its own users, so tests
 * share one database without seeing each other's objects.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import type { ErrorKind } from "../../src/domain/errors.js";
import { SORTABLE_FIELDS, openStore } from "../../src/store/store.js";
import { MIGRATIONS } from "../../src/store/migrations/index.js";
import type { ListFamily } from "../../src/store/store.js";
import type { ArtifactKind, ArtifactRow, BundleRow, JobRow, NewArtifact, NewBundle, NewUser, Store, UserRow } from "../../src/store/types.js";
import { childStoreKit } from "./child-process.js";
import { postgresTarget, sqliteTarget } from "../helpers/databases.js";
import type { StoreTarget, TargetDatabase } from "../helpers/databases.js";

/** Rejects with a KilnError of this kind (and, if given, a message matching `message`). */
async function expectKilnError(p: Promise<unknown>, kind: ErrorKind, message?: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a ${kind} KilnError`).toBeDefined();
  if (!isKilnError(err, kind)) throw new Error(`expected KilnError ${kind}, got ${String(err)}`, { cause: err });
  if (message !== undefined) expect(err.message).toMatch(message);
}

describe.each<StoreTarget>([sqliteTarget, postgresTarget])("store on $dialect", (target) => {
  let database: TargetDatabase;
  let store: Store;
  /** The store's clock: tests move it to check what gets stamped. */
  let nowMs = Date.UTC(2024, 1, 29, 12, 34, 56, 789);
  const now = (): Date => new Date(nowMs);
  let seq = 0;

  beforeAll(async () => {
    database = await target.create();
    store = await openStore({ ...database.options, now });
    expect(store.dialect).toBe(target.dialect);
  });

  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  /**
   * Nine claimers on three connections (this store and two more) call `claimOnce` until it
   * claims nothing; every id claimed, in the order claimed.
   */
  async function claimConcurrently(claimOnce: (s: Store, claimer: number) => Promise<number[]>): Promise<number[]> {
    const other = await openStore({ ...database.options, now });
    const third = await openStore({ ...database.options, now });
    try {
      const stores = [store, other, third];
      const claimed: number[] = [];
      await Promise.all(
        Array.from({ length: 9 }, async (_, i) => {
          for (;;) {
            const got = await claimOnce(stores[i % 3]!, i);
            if (got.length === 0) return;
            claimed.push(...got);
          }
        }),
      );
      return claimed;
    } finally {
      await other.close();
      await third.close();
    }
  }

  function newUser(over: Partial<NewUser> = {}): Promise<UserRow> {
    seq++;
    return store.users.create({
      login: `user${seq}`,
      email: `user${seq}@example.org`,
      firstName: null,
      surname: null,
      passwordHash: "scrypt$16384$8$1$c2FsdA$aGFzaA",
      admin: false,
      active: true,
      entitlements: [],
      ...over,
    });
  }

  function bundleFields(userId: number, over: Partial<NewBundle> = {}): NewBundle {
    return {
      userId,
      name: "nginx",
      version: "1.0",
      description: null,
      release: null,
      tag: null,
      license: null,
      defaultInstallLocation: null,
      restrictionRule: null,
      imported: false,
      ...over,
    };
  }

  function artifactFields(bundleId: number, parentId: number | null, kind: ArtifactKind, name: string, over: Partial<NewArtifact> = {}): NewArtifact {
    return {
      bundleId,
      parentId,
      kind,
      tag: kind === "file" ? "softwarefile" : null,
      name,
      fullName: null,
      origName: null,
      installLocation: null,
      extract: false,
      install: true,
      params: null,
      version: null,
      release: null,
      arch: null,
      mimeType: null,
      blobDigest: null,
      size: null,
      md5: null,
      uploadedTime: null,
      bootOrder: null,
      bootType: null,
      ...over,
    };
  }

  /** A second store on the same database (a second process, as far as the database can tell). */
  async function withSecondStore<T>(fn: (other: Store) => Promise<T>): Promise<T> {
    const other = await openStore({ ...database.options, now });
    try {
      return await fn(other);
    } finally {
      await other.close();
    }
  }

  describe("migrations", () => {
    it("records the initial migration once, and opening the database again changes nothing", async () => {
      const user = await newUser();
      await withSecondStore(async (other) => {
        expect(await other.users.get(user.id)).toEqual(user);
      });
      await withSecondStore(async () => undefined);
      const rows = await database.query("SELECT name FROM kiln_migration ORDER BY name");
      expect(rows.map((r) => r.name)).toEqual(Object.keys(MIGRATIONS));
      expect(await store.users.getByLogin(user.login)).toEqual(user);
    });

    it("migrates a fresh database once when two stores open it at the same time", async () => {
      const fresh = await target.create();
      try {
        const stores = await Promise.all([openStore({ ...fresh.options, now }), openStore({ ...fresh.options, now })]);
        const [first, second] = stores as [Store, Store];
        const user = await first.users.create({ login: "both", email: null, firstName: null, surname: null, passwordHash: "h", admin: false, active: true, entitlements: [] });
        expect(await second.users.get(user.id)).toEqual(user);
        await Promise.all(stores.map((s) => s.close()));
        const rows = await fresh.query("SELECT name FROM kiln_migration ORDER BY name");
        expect(rows.map((r) => r.name)).toEqual(Object.keys(MIGRATIONS));
      } finally {
        await fresh.drop();
      }
    });

    it.runIf(target.dialect === "sqlite")("migrates a fresh SQLite file once when several processes open it together", async () => {
      const fresh = await target.create();
      const kit = await childStoreKit();
      try {
        // Every process loads the store first, then all open the database at the same instant.
        const startAt = String(Date.now() + 1500);
        const script = `
          const startAt = Number(args[1]);
          if (startAt - Date.now() > 20) await new Promise((r) => setTimeout(r, startAt - Date.now() - 20));
          while (Date.now() < startAt); // the last milliseconds spun, to start together
          const store = await openStore({ dataDir: args[0] });
          const page = await store.users.list({});
          await store.close();
          console.log(JSON.stringify(page));`;
        const outputs = await Promise.all([0, 1, 2, 3].map(() => kit.run(script, [fresh.options.dataDir, startAt])));
        expect(outputs.map((o) => o.stdout.trim())).toEqual(Array(4).fill('{"items":[],"total":0}'));
        const rows = await fresh.query("SELECT name FROM kiln_migration ORDER BY name");
        expect(rows.map((r) => r.name)).toEqual(Object.keys(MIGRATIONS));
      } finally {
        await kit.dispose();
        await fresh.drop();
      }
    });

    it.runIf(target.dialect === "sqlite")("keeps the SQLite file in WAL mode", async () => {
      const rows = await database.query("PRAGMA journal_mode");
      expect(rows[0]?.journal_mode).toBe("wal");
    });
  });

  describe("users", () => {
    it("creates, reads, updates and deletes a user, with exact timestamps, booleans and entitlements", async () => {
      nowMs = Date.UTC(1999, 11, 31, 23, 59, 59, 999);
      const created = await newUser({ firstName: "Ada", admin: true, entitlements: ["image_create", "account_access"] });
      expect(created.id).toBeGreaterThan(0);
      expect(created.admin).toBe(true);
      expect(created.active).toBe(true);
      expect(created.created).toEqual(new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999)));

      const read = await store.users.get(created.id);
      expect(read).toEqual(created);
      expect(read?.created).toBeInstanceOf(Date);
      expect(read?.created.getTime()).toBe(Date.UTC(1999, 11, 31, 23, 59, 59, 999));
      expect(read?.entitlements).toEqual(["image_create", "account_access"]);
      expect(await store.users.getByLogin(created.login)).toEqual(created);
      expect(await store.users.getByLogin(`${created.login}-nobody`)).toBeUndefined();

      nowMs += 1234;
      const updated = await store.users.update(created.id, { surname: "Lovelace", admin: false, entitlements: [] });
      expect(updated).toMatchObject({ id: created.id, firstName: "Ada", surname: "Lovelace", admin: false, entitlements: [] });
      expect(updated?.created).toEqual(created.created);
      expect(updated?.lastModified.getTime()).toBe(created.lastModified.getTime() + 1234);
      expect(await store.users.get(created.id)).toEqual(updated);
      expect(await store.users.update(created.id + 100_000, { surname: "x" })).toBeUndefined();

      expect(await store.users.delete(created.id)).toBe(true);
      expect(await store.users.get(created.id)).toBeUndefined();
      expect(await store.users.delete(created.id)).toBe(false);
    });

    it("refuses a second user with the same login as a conflict", async () => {
      const user = await newUser();
      await expectKilnError(newUser({ login: user.login }), "conflict");
    });

    it("refuses a login that differs from another only in case, and finds a login whatever its case", async () => {
      const user = await newUser({ login: `Mixed${++seq}` });
      await expectKilnError(newUser({ login: user.login.toUpperCase() }), "conflict");
      await expectKilnError(newUser({ login: user.login.toLowerCase() }), "conflict");
      expect(await store.users.getByLoginIgnoringCase(user.login.toLowerCase())).toEqual(user);
      expect(await store.users.getByLogin(user.login.toLowerCase())).toBeUndefined();
    });

    it("lists users by active flag and by a case-insensitive FIQL search on login, email and names", async () => {
      const tag = `zq${seq}`;
      const a = await newUser({ login: `${tag}-anna`, firstName: "Anna" });
      const b = await newUser({ login: `other${seq}`, email: `${tag.toUpperCase()}@EXAMPLE.ORG`, active: false });
      const c = await newUser({ login: `third${seq}`, surname: `Mc${tag}` });
      const q = `loginName=='*${tag}*',email=='*${tag}*',firstName=='*${tag}*',surname=='*${tag}*'`;
      const all = await store.users.list({ query: q });
      expect(all.items.map((u) => u.id)).toEqual([a.id, b.id, c.id]);
      expect(all.total).toBe(3);
      const inactive = await store.users.list({ query: q, active: false });
      expect(inactive.items.map((u) => u.id)).toEqual([b.id]);
      const active = await store.users.list({ query: q, active: true, orderBy: "login", descending: true });
      expect(active.items.map((u) => u.login)).toEqual([a.login, c.login]);
    });
  });

  describe("API keys", () => {
    it("creates, finds by public key, lists, updates and deletes keys, only for their owner", async () => {
      const alice = await newUser();
      const bob = await newUser();
      const key = await store.apiKeys.create({
        userId: alice.id,
        name: "ci",
        description: null,
        publicKey: `pub-${alice.id}`,
        secretEnc: "v1:secret",
      });
      const other = await store.apiKeys.create({
        userId: alice.id,
        name: "laptop",
        description: "Alice's laptop",
        publicKey: `pub2-${alice.id}`,
        secretEnc: "v1:secret2",
      });
      expect(await store.apiKeys.get(alice.id, key.id)).toEqual(key);
      expect(await store.apiKeys.getByPublicKey(key.publicKey)).toEqual(key);
      expect(await store.apiKeys.getByPublicKey("pub-none")).toBeUndefined();
      await expectKilnError(
        store.apiKeys.create({ userId: bob.id, name: null, description: null, publicKey: key.publicKey, secretEnc: "x" }),
        "conflict",
      );

      expect((await store.apiKeys.list(alice.id, {})).items).toEqual([key, other]);
      expect((await store.apiKeys.list(alice.id, { query: "name=='*LAPTOP*',description=='*LAPTOP*'" })).items).toEqual([other]);
      expect(await store.apiKeys.list(bob.id, {})).toEqual({ items: [], total: 0 });

      expect(await store.apiKeys.get(bob.id, key.id)).toBeUndefined();
      expect(await store.apiKeys.update(bob.id, key.id, { name: "stolen" })).toBeUndefined();
      expect(await store.apiKeys.delete(bob.id, key.id)).toBe(false);
      expect(await store.apiKeys.get(alice.id, key.id)).toEqual(key);

      nowMs += 10;
      const renamed = await store.apiKeys.update(alice.id, key.id, { name: "ci-2", description: "build bot" });
      expect(renamed).toMatchObject({ name: "ci-2", description: "build bot", publicKey: key.publicKey, secretEnc: "v1:secret" });
      expect(renamed?.lastModified.getTime()).toBe(key.lastModified.getTime() + 10);
      expect(await store.apiKeys.delete(alice.id, key.id)).toBe(true);
      expect(await store.apiKeys.getByPublicKey(key.publicKey)).toBeUndefined();
    });
  });

  describe("distributions", () => {
    it("syncs the configured distributions with stable ids, deactivating and reactivating", async () => {
      const debian12 = { name: "Debian", version: "12", arch: "x86_64" };
      const debian11 = { name: "Debian", version: "11", arch: "x86_64" };
      const arm = { name: "Debian", version: "12", arch: "aarch64" };
      const first = await store.distributions.sync([debian12, debian11, debian12]);
      expect(first.map(({ name, version, arch, active }) => ({ name, version, arch, active }))).toEqual([
        { ...debian12, active: true },
        { ...debian11, active: true },
      ]);
      const d12 = first[0]!;
      const d11 = first[1]!;

      const second = await store.distributions.sync([arm, debian12]);
      expect(second.map((d) => d.id)).toEqual([d12.id, second[1]?.id]);
      expect(second[1]).toMatchObject(arm);
      expect(await store.distributions.get(d11.id)).toMatchObject({ ...debian11, active: false, created: d11.created });

      const third = await store.distributions.sync([debian11, debian12, arm]);
      expect(third.map((d) => d.id).sort((x, y) => x - y)).toEqual([d12.id, d11.id, second[1]?.id].sort((x, y) => x - y));

      expect(await store.distributions.setActive(d11.id, false)).toMatchObject({ id: d11.id, active: false });
      expect((await store.distributions.get(d11.id))?.active).toBe(false);
      expect(await store.distributions.setActive(999_999, true)).toBeUndefined();

      const list = await store.distributions.list({ query: "arch==aarch*", orderBy: "arch" });
      expect(list.items.map((d) => d.arch)).toEqual(["aarch64"]);
      const byVersion = await store.distributions.list({ orderBy: "version", descending: true });
      expect(byVersion.items.map((d) => d.version)).toEqual(["12", "12", "11"]);
      // Equal versions: the tie-break by id follows the direction.
      expect(byVersion.items[0]!.id).toBeGreaterThan(byVersion.items[1]!.id);
      expect(byVersion.total).toBe(3);
    });
  });

  describe("bundles", () => {
    it("creates, reads, updates, restricts and deletes a bundle", async () => {
      const alice = await newUser();
      const bundle = await store.bundles.create(bundleFields(alice.id, { description: "web server", restrictionRule: "distribution=Debian" }));
      expect(bundle).toMatchObject({ userId: alice.id, name: "nginx", version: "1.0", restrictionRule: "distribution=Debian" });
      expect(bundle.restrictionId).toBeGreaterThan(0);
      expect(await store.bundles.get(alice.id, bundle.id)).toEqual(bundle);

      const second = await store.bundles.create(bundleFields(alice.id, { name: "redis" }));
      expect(second.restrictionId).not.toBe(bundle.restrictionId);

      nowMs += 5;
      const updated = await store.bundles.update(alice.id, bundle.id, { version: "1.1", license: "BSD-2-Clause" });
      expect(updated).toMatchObject({ version: "1.1", license: "BSD-2-Clause", description: "web server", name: "nginx" });
      expect(updated!.lastModified.getTime()).toBe(bundle.lastModified.getTime() + 5);
      await expectKilnError(store.bundles.update(alice.id, bundle.id, { userId: alice.id + 1 }), "invalidField");

      nowMs += 5;
      const restricted = await store.bundles.setRestriction(alice.id, bundle.id, bundle.restrictionId, "arch=x86_64");
      expect(restricted).toMatchObject({ restrictionId: bundle.restrictionId, restrictionRule: "arch=x86_64" });
      expect(restricted!.lastModified.getTime()).toBe(updated!.lastModified.getTime() + 5);
      expect(await store.bundles.setRestriction(alice.id, bundle.id, second.restrictionId, "x")).toBeUndefined();
      expect((await store.bundles.get(alice.id, bundle.id))?.restrictionRule).toBe("arch=x86_64");
      expect(await store.bundles.setRestriction(alice.id, bundle.id, bundle.restrictionId, null)).toMatchObject({ restrictionRule: null });

      expect(await store.bundles.delete(alice.id, bundle.id)).toBe(true);
      expect(await store.bundles.get(alice.id, bundle.id)).toBeUndefined();
      expect(await store.bundles.delete(alice.id, bundle.id)).toBe(false);
      expect(await store.bundles.get(alice.id, second.id)).toEqual(second);
    });

    it("lists with search, order, direction, paging and a total counted before paging", async () => {
      const owner = await newUser();
      const names = ["alpha", "Beta", "gamma", "beta-2", "Delta", "50%_off", "500 off"];
      const made: BundleRow[] = [];
      for (const name of names) made.push(await store.bundles.create(bundleFields(owner.id, { name, version: name === "gamma" ? null : "1" })));
      const id = (name: string): number => made.find((b) => b.name === name)!.id;

      const all = await store.bundles.list(owner.id, {});
      expect(all.items.map((b) => b.name)).toEqual(names);
      expect(all.total).toBe(7);

      const beta = await store.bundles.list(owner.id, { query: "name=='*BETA*'" });
      expect(beta.items.map((b) => b.id)).toEqual([id("Beta"), id("beta-2")]);
      expect(beta.total).toBe(2);
      // LIKE's wildcards in a query are literal characters; only `*` is a wildcard.
      expect((await store.bundles.list(owner.id, { query: "name=='*0%_*'" })).items.map((b) => b.name)).toEqual(["50%_off"]);
      expect((await store.bundles.list(owner.id, { query: "name==*_*" })).items.map((b) => b.name)).toEqual(["50%_off"]);
      expect((await store.bundles.list(owner.id, { query: "name=='50%_off'" })).items.map((b) => b.name)).toEqual(["50%_off"]);
      expect((await store.bundles.list(owner.id, { query: "name=='*nothing like it*'" })).total).toBe(0);
      // FIQL: `;` and, `,` or (`;` binds tighter), `!=` keeps rows without the field, numbers and dates typed.
      expect((await store.bundles.list(owner.id, { query: `name==beta*;dbId!=${id("Beta")},name==GAMMA` })).items.map((b) => b.name)).toEqual(["gamma", "beta-2"]);
      expect((await store.bundles.list(owner.id, { query: "version!='1'" })).items.map((b) => b.name)).toEqual(["gamma"]);
      expect((await store.bundles.list(owner.id, { query: "name!=*a*" })).items.map((b) => b.name)).toEqual(names.filter((n) => !/a/i.test(n)));
      expect((await store.bundles.list(owner.id, { query: `dbId=ge=${id("Beta")};dbId=le=${id("Beta")}` })).items.map((b) => b.name)).toEqual(["Beta"]);
      expect((await store.bundles.list(owner.id, { query: "created=gt=2000-01-01T00:00:00Z" })).total).toBe(7);
      await expectKilnError(store.bundles.list(owner.id, { query: "secret==x" }), "invalidQuery", /cannot search mySoftwareList by "secret" \(query character 1\)/);
      await expectKilnError(store.bundles.list(owner.id, { query: "dbId==abc" }), "invalidQuery", /dbId is a number, got "abc" \(query character 7\)/);
      await expectKilnError(store.bundles.list(owner.id, { query: "name=='x" }), "invalidQuery", /character 7: the quoted value is not closed/);

      const byName = await store.bundles.list(owner.id, { orderBy: "name" });
      // Digits before letters everywhere; how "%" and " " compare is the collation's business.
      expect(byName.items.slice(0, 2).map((b) => b.name).sort()).toEqual(["50%_off", "500 off"]);
      expect(byName.items.slice(2).map((b) => b.name)).toEqual(["alpha", "Beta", "beta-2", "Delta", "gamma"]);

      const desc = await store.bundles.list(owner.id, { orderBy: "name", descending: true, count: 3 });
      expect(desc.items.map((b) => b.name)).toEqual(["gamma", "Delta", "beta-2"]);
      expect(desc.total).toBe(7);

      const page = await store.bundles.list(owner.id, { orderBy: "name", count: 2, offset: 3 });
      expect(page.items.map((b) => b.name)).toEqual(["Beta", "beta-2"]);
      expect(page.total).toBe(7);
      const tail = await store.bundles.list(owner.id, { orderBy: "name", offset: 5 });
      expect(tail.items.map((b) => b.name)).toEqual(["Delta", "gamma"]);
      expect(await store.bundles.list(owner.id, { offset: 50, count: 5 })).toEqual({ items: [], total: 7 });
      expect((await store.bundles.list(owner.id, { count: 0 })).items).toEqual([]);

      // A NULL sorts as the smallest value on both databases.
      const byVersion = await store.bundles.list(owner.id, { orderBy: "version" });
      expect(byVersion.items[0]!.name).toBe("gamma");
      const byVersionDesc = await store.bundles.list(owner.id, { orderBy: "version", descending: true });
      expect(byVersionDesc.items.at(-1)!.name).toBe("gamma");
      // Equal versions fall back to id, in the requested direction.
      expect(byVersion.items.slice(1).map((b) => b.id)).toEqual(made.filter((b) => b.version !== null).map((b) => b.id));
      expect(byVersionDesc.items.slice(0, -1).map((b) => b.id)).toEqual(made.filter((b) => b.version !== null).map((b) => b.id).reverse());
    });

    it("refuses an unknown orderBy, naming the fields allowed, and negative paging", async () => {
      const owner = await newUser();
      await expectKilnError(store.bundles.list(owner.id, { orderBy: "password_hash" }), "invalidQuery", /dbId, name, version, .*created, lastModified, id/);
      await expectKilnError(store.bundles.list(owner.id, { orderBy: "user_id" }), "invalidQuery");
      await expectKilnError(store.bundles.list(owner.id, { count: -1 }), "invalidQuery", /count/);
      await expectKilnError(store.bundles.list(owner.id, { offset: 1.5 }), "invalidQuery", /offset/);
    });

    it("copies a bundle with its restriction and whole artifact tree on clone", async () => {
      const alice = await newUser();
      const bob = await newUser();
      const source = await store.bundles.create(bundleFields(alice.id, { name: "app", description: "the app", restrictionRule: "arch=x86_64" }));
      const a = store.artifacts;
      const late = await a.create(artifactFields(source.id, null, "file", "moved-late.txt", { blobDigest: "sha256:" + "1".repeat(64), size: 3 }));
      const etc = await a.create(artifactFields(source.id, null, "folder", "etc"));
      const conf = await a.create(artifactFields(source.id, etc.id, "file", "app.conf", { blobDigest: "sha256:" + "2".repeat(64), size: 10, md5: "abc", uploadedTime: new Date(Date.UTC(2023, 0, 1, 0, 0, 0, 1)) }));
      const d = await a.create(artifactFields(source.id, etc.id, "folder", "app.d"));
      await a.create(artifactFields(source.id, d.id, "file", "10-local.conf"));
      await a.create(artifactFields(source.id, null, "file", "init.sh", { tag: "bootscript", bootOrder: 3, bootType: "everyboot" }));
      const nested = await a.create(artifactFields(source.id, d.id, "folder", "nested"));
      // Moved under a folder created after it: its id is smaller than its parent's.
      await a.update(source.id, late.id, { parentId: nested.id });

      nowMs += 100;
      const clone = await store.bundles.clone(alice.id, source.id, { name: "app-copy", version: undefined });
      expect(clone).toBeDefined();
      expect(clone).toMatchObject({ userId: alice.id, name: "app-copy", version: source.version, description: "the app", restrictionRule: "arch=x86_64" });
      expect(clone!.id).not.toBe(source.id);
      expect(clone!.restrictionId).not.toBe(source.restrictionId);
      expect(clone!.created.getTime()).toBe(nowMs);

      const tree = async (bundleId: number): Promise<Map<string, ArtifactRow>> => {
        const rows = await a.listAll(bundleId);
        const byId = new Map(rows.map((r) => [r.id, r]));
        const pathOf = (r: ArtifactRow): string => (r.parentId === null ? r.name : `${pathOf(byId.get(r.parentId)!)}/${r.name}`);
        return new Map(rows.map((r) => [pathOf(r), r]));
      };
      const before = await tree(source.id);
      const after = await tree(clone!.id);
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      expect([...after.keys()]).toContain("etc/app.d/nested/moved-late.txt");
      const sourceIds = new Set([...before.values()].map((r) => r.id));
      for (const [p, copy] of after) {
        const orig = before.get(p)!;
        expect(sourceIds.has(copy.id), p).toBe(false);
        expect(copy.bundleId).toBe(clone!.id);
        const { id: _i, bundleId: _b, parentId: _p, created: _c, lastModified: _m, ...copied } = copy;
        const { id: _i2, bundleId: _b2, parentId: _p2, created: _c2, lastModified: _m2, ...original } = orig;
        expect(copied, p).toEqual(original);
      }
      expect(after.get("etc/app.conf")).toMatchObject({ blobDigest: conf.blobDigest, size: 10, md5: "abc", uploadedTime: conf.uploadedTime });
      expect(after.get("init.sh")).toMatchObject({ tag: "bootscript", bootOrder: 3, bootType: "everyboot" });
      // The source is untouched.
      expect(await tree(source.id)).toEqual(before);
      expect(await store.bundles.get(alice.id, source.id)).toEqual(source);

      expect(await store.bundles.clone(bob.id, source.id, {})).toBeUndefined();
      expect((await store.bundles.list(bob.id, {})).total).toBe(0);
      await expectKilnError(store.bundles.clone(alice.id, source.id, { userId: bob.id }), "invalidField");
    });
  });

  describe("artifacts", () => {
    it("builds a tree with positions in creation order, reads and lists it per bundle", async () => {
      const owner = await newUser();
      const bundle = await store.bundles.create(bundleFields(owner.id));
      const otherBundle = await store.bundles.create(bundleFields(owner.id, { name: "other" }));
      const a = store.artifacts;
      nowMs = Date.UTC(2024, 5, 1, 10, 0, 0, 1);
      const folder = await a.create(artifactFields(bundle.id, null, "folder", "opt"));
      const big = await a.create(
        artifactFields(bundle.id, null, "file", "big.iso", { size: 5 * 1024 ** 3, extract: true, install: false, uploadedTime: new Date(Date.UTC(2024, 0, 1, 0, 0, 0, 999)), params: '{"rights":"0644"}' }),
      );
      const inner = await a.create(artifactFields(bundle.id, folder.id, "file", "run.sh"));
      const sub = await a.create(artifactFields(bundle.id, folder.id, "folder", "lib"));
      const leaf = await a.create(artifactFields(bundle.id, sub.id, "file", "libx.so"));
      const elsewhere = await a.create(artifactFields(otherBundle.id, null, "file", "other.txt"));

      expect([folder.position, big.position, inner.position, sub.position, leaf.position, elsewhere.position]).toEqual([1, 2, 1, 2, 1, 1]);
      expect(big).toMatchObject({ size: 5 * 1024 ** 3, extract: true, install: false, kind: "file", params: '{"rights":"0644"}' });
      expect(await a.get(bundle.id, big.id)).toEqual(big);
      expect((await a.get(bundle.id, big.id))!.uploadedTime!.getTime()).toBe(Date.UTC(2024, 0, 1, 0, 0, 0, 999));
      expect((await a.get(bundle.id, leaf.id))!.created.getTime()).toBe(Date.UTC(2024, 5, 1, 10, 0, 0, 1));
      expect(await a.get(otherBundle.id, big.id)).toBeUndefined();

      const all = await a.listAll(bundle.id);
      expect(all.map((r) => r.name)).toEqual(["opt", "big.iso", "run.sh", "lib", "libx.so"]);
      expect(all.map((r) => r.parentId)).toEqual([null, null, folder.id, folder.id, sub.id]);

      await expectKilnError(a.create(artifactFields(bundle.id, big.id, "file", "in-a-file")), "invalidField", /not a folder/);
      await expectKilnError(a.create(artifactFields(otherBundle.id, folder.id, "file", "cross")), "invalidId");
      await expectKilnError(a.create(artifactFields(999_999, null, "file", "nowhere")), "invalidId");
      await expectKilnError(a.create({ ...artifactFields(bundle.id, null, "file", "x"), kind: "device" as ArtifactKind }), "invalidField");
    });

    it("updates fields, moves within the bundle, refuses loops and deletes subtrees", async () => {
      const owner = await newUser();
      const bundle = await store.bundles.create(bundleFields(owner.id));
      const a = store.artifacts;
      const top = await a.create(artifactFields(bundle.id, null, "folder", "top"));
      const mid = await a.create(artifactFields(bundle.id, top.id, "folder", "mid"));
      const low = await a.create(artifactFields(bundle.id, mid.id, "folder", "low"));
      const file = await a.create(artifactFields(bundle.id, null, "file", "f.txt"));
      const other = await a.create(artifactFields(bundle.id, top.id, "file", "g.txt"));

      nowMs += 7;
      const uploaded = await a.update(bundle.id, file.id, { blobDigest: "sha256:" + "a".repeat(64), size: 12, md5: "0123", uploadedTime: now() });
      expect(uploaded).toMatchObject({ blobDigest: "sha256:" + "a".repeat(64), size: 12, md5: "0123", name: "f.txt", position: file.position });
      expect(uploaded!.uploadedTime!.getTime()).toBe(nowMs);
      expect(uploaded!.lastModified.getTime()).toBe(file.lastModified.getTime() + 7);

      const moved = await a.update(bundle.id, file.id, { parentId: mid.id });
      expect(moved).toMatchObject({ parentId: mid.id, position: 2 });
      const back = await a.update(bundle.id, file.id, { parentId: null });
      expect(back).toMatchObject({ parentId: null, position: 2 });

      await expectKilnError(a.update(bundle.id, top.id, { parentId: low.id }), "invalidField", /itself/);
      await expectKilnError(a.update(bundle.id, top.id, { parentId: top.id }), "invalidField", /itself/);
      await expectKilnError(a.update(bundle.id, file.id, { parentId: other.id }), "invalidField", /not a folder/);
      await expectKilnError(a.update(bundle.id, mid.id, { kind: "file" }), "invalidField");
      await expectKilnError(a.update(bundle.id, file.id, { bundleId: bundle.id + 1 }), "invalidField");
      expect(await a.update(bundle.id + 100_000, file.id, { name: "x" })).toBeUndefined();
      expect(await a.update(bundle.id, file.id + 100_000, { name: "x" })).toBeUndefined();
      expect((await a.get(bundle.id, top.id))!.parentId).toBeNull();

      expect(await a.delete(bundle.id, mid.id)).toBe(true);
      expect((await a.listAll(bundle.id)).map((r) => r.name)).toEqual(["top", "f.txt", "g.txt"]);
      expect(await a.get(bundle.id, low.id)).toBeUndefined();
      expect(await a.delete(bundle.id, mid.id)).toBe(false);
    });

    it("deletes a whole tree with deleteAll and reports every artifact removed", async () => {
      const owner = await newUser();
      const bundle = await store.bundles.create(bundleFields(owner.id));
      const keep = await store.bundles.create(bundleFields(owner.id, { name: "keep" }));
      const a = store.artifacts;
      const f1 = await a.create(artifactFields(bundle.id, null, "folder", "f1"));
      const f2 = await a.create(artifactFields(bundle.id, f1.id, "folder", "f2"));
      await a.create(artifactFields(bundle.id, f2.id, "file", "x"));
      await a.create(artifactFields(bundle.id, f1.id, "file", "y"));
      await a.create(artifactFields(bundle.id, null, "file", "z"));
      const kept = await a.create(artifactFields(keep.id, null, "file", "kept"));
      expect(await a.deleteAll(bundle.id)).toBe(5);
      expect(await a.listAll(bundle.id)).toEqual([]);
      expect(await a.deleteAll(bundle.id)).toBe(0);
      expect(await a.listAll(keep.id)).toEqual([kept]);
    });

    it("knows which blobs artifacts reference", async () => {
      const owner = await newUser();
      const b1 = await store.bundles.create(bundleFields(owner.id));
      const b2 = await store.bundles.create(bundleFields(owner.id));
      const digest = (c: string): string => `sha256:${c.repeat(64)}`;
      await store.artifacts.create(artifactFields(b1.id, null, "file", "one", { blobDigest: digest("e") }));
      await store.artifacts.create(artifactFields(b2.id, null, "file", "two", { blobDigest: digest("e") }));
      await store.artifacts.create(artifactFields(b2.id, null, "file", "three", { blobDigest: digest("d") }));
      await store.artifacts.create(artifactFields(b2.id, null, "file", "empty"));
      expect(await store.artifacts.referencesBlob(digest("e"))).toBe(true);
      expect(await store.artifacts.referencesBlob(digest("d"))).toBe(true);
      expect(await store.artifacts.referencesBlob(digest("f"))).toBe(false);
      await store.artifacts.deleteAll(b2.id);
      expect(await store.artifacts.referencesBlob(digest("e"))).toBe(true);
      expect(await store.artifacts.referencesBlob(digest("d"))).toBe(false);
    });
  });

  describe("cloud accounts", () => {
    it("creates, lists, updates and deletes accounts, only for their owner", async () => {
      const alice = await newUser();
      const bob = await newUser();
      const docker = await store.cloudAccounts.create({
        userId: alice.id,
        name: "Docker Hub",
        type: "docker",
        url: "https://registry-1.docker.io",
        login: "alice",
        secretEnc: "v1:pw",
      });
      const openshift = await store.cloudAccounts.create({
        userId: alice.id,
        name: "prod cluster",
        type: "openshift",
        url: "https://registry.apps.example.org",
        login: null,
        secretEnc: "v1:token",
      });
      expect(await store.cloudAccounts.get(alice.id, docker.id)).toEqual(docker);
      expect((await store.cloudAccounts.list(alice.id, { query: "registryUrl=='*EXAMPLE.org*'" })).items).toEqual([openshift]);
      expect((await store.cloudAccounts.list(alice.id, { orderBy: "type", descending: true })).items.map((x) => x.type)).toEqual([
        "openshift",
        "docker",
      ]);
      expect(await store.cloudAccounts.list(bob.id, {})).toEqual({ items: [], total: 0 });
      expect(await store.cloudAccounts.get(bob.id, docker.id)).toBeUndefined();
      expect(await store.cloudAccounts.update(bob.id, docker.id, { url: "https://evil.example" })).toBeUndefined();
      expect(await store.cloudAccounts.delete(bob.id, docker.id)).toBe(false);
      expect(await store.cloudAccounts.get(alice.id, docker.id)).toEqual(docker);

      nowMs += 3;
      const updated = await store.cloudAccounts.update(alice.id, docker.id, { secretEnc: "v1:pw2", login: null });
      expect(updated).toMatchObject({ secretEnc: "v1:pw2", login: null, name: "Docker Hub" });
      expect(updated!.lastModified.getTime()).toBe(docker.lastModified.getTime() + 3);
      await expectKilnError(store.cloudAccounts.update(alice.id, docker.id, { userId: bob.id }), "invalidField");
      await expectKilnError(store.cloudAccounts.update(alice.id, docker.id, { type: "s3" as "docker" }), "invalidField");
      expect(await store.cloudAccounts.delete(alice.id, docker.id)).toBe(true);
      expect(await store.cloudAccounts.get(alice.id, docker.id)).toBeUndefined();
    });
  });

  describe("templates", () => {
    it("creates templates on the owner's bundles only, lists them by distribution and deletes them", async () => {
      const synced = await store.distributions.sync([
        { name: "Debian", version: "12", arch: "x86_64" },
        { name: "Ubuntu", version: "24.04", arch: "x86_64" },
      ]);
      const d12 = synced[0]!;
      const d11 = synced[1]!;
      const alice = await newUser();
      const bob = await newUser();
      const bundle = await store.bundles.create(bundleFields(alice.id));
      const t1 = await store.templates.create({ userId: alice.id, bundleId: bundle.id, distributionId: d12.id });
      const t2 = await store.templates.create({ userId: alice.id, bundleId: bundle.id, distributionId: d11.id });
      expect(await store.templates.get(alice.id, bundle.id, t1.id)).toEqual(t1);
      expect(await store.templates.get(alice.id, bundle.id + 100_000, t1.id)).toBeUndefined();
      expect(await store.templates.list(alice.id, bundle.id, {})).toEqual({ items: [t1, t2], total: 2 });
      expect((await store.templates.list(alice.id, bundle.id, { query: "distribution.name==ubuntu" })).items).toEqual([t2]);
      expect((await store.templates.list(alice.id, bundle.id, { orderBy: "id", descending: true })).items).toEqual([t2, t1]);

      // Bob cannot hang a template from Alice's bundle, nor see, list or delete hers.
      await expectKilnError(store.templates.create({ userId: bob.id, bundleId: bundle.id, distributionId: d12.id }), "invalidId");
      await expectKilnError(store.templates.create({ userId: alice.id, bundleId: bundle.id, distributionId: 999_999 }), "invalidId");
      expect(await store.templates.get(bob.id, bundle.id, t1.id)).toBeUndefined();
      expect(await store.templates.list(bob.id, bundle.id, {})).toEqual({ items: [], total: 0 });
      expect(await store.templates.delete(bob.id, bundle.id, t1.id)).toBe(false);

      expect(await store.templates.delete(alice.id, bundle.id, t1.id)).toBe(true);
      expect(await store.templates.get(alice.id, bundle.id, t1.id)).toBeUndefined();
      expect(await store.templates.delete(alice.id, bundle.id, t1.id)).toBe(false);
    });
  });

  describe("download keys", () => {
    it("peeks, consumes once, and never returns an expired key or one for another target", async () => {
      const user = await newUser();
      const t0 = new Date(Date.UTC(2024, 0, 1, 12, 0, 0, 0));
      const expiresAt = new Date(t0.getTime() + 60_000);
      await store.downloadKeys.create({ keyHash: `h-${user.id}-a`, userId: user.id, target: "artifact:1", expiresAt });
      await store.downloadKeys.create({ keyHash: `h-${user.id}-b`, userId: user.id, target: "image:2", expiresAt });
      await expectKilnError(store.downloadKeys.create({ keyHash: `h-${user.id}-a`, userId: user.id, target: "artifact:1", expiresAt }), "conflict");

      const peeked = await store.downloadKeys.peek(`h-${user.id}-a`, "artifact:1", t0);
      expect(peeked).toEqual({ keyHash: `h-${user.id}-a`, userId: user.id, target: "artifact:1", expiresAt });
      expect(await store.downloadKeys.peek(`h-${user.id}-a`, "artifact:1", t0)).toEqual(peeked);
      expect(await store.downloadKeys.peek(`h-${user.id}-a`, "image:2", t0)).toBeUndefined();
      expect(await store.downloadKeys.consume(`h-${user.id}-a`, "image:2", t0)).toBeUndefined();

      // Expired at exactly expiresAt, and an expired key is not consumed either.
      expect(await store.downloadKeys.peek(`h-${user.id}-b`, "image:2", expiresAt)).toBeUndefined();
      expect(await store.downloadKeys.consume(`h-${user.id}-b`, "image:2", expiresAt)).toBeUndefined();
      expect(await store.downloadKeys.peek(`h-${user.id}-b`, "image:2", new Date(expiresAt.getTime() - 1))).toBeDefined();

      expect(await store.downloadKeys.consume(`h-${user.id}-a`, "artifact:1", t0)).toEqual(peeked);
      expect(await store.downloadKeys.consume(`h-${user.id}-a`, "artifact:1", t0)).toBeUndefined();
      expect(await store.downloadKeys.peek(`h-${user.id}-a`, "artifact:1", t0)).toBeUndefined();
    });

    it("lets exactly one of concurrent consumers win each key, across two connections", async () => {
      const user = await newUser();
      const expiresAt = new Date(Date.now() + 3_600_000);
      const keys = Array.from({ length: 25 }, (_, i) => `race-${user.id}-${i}`);
      for (const keyHash of keys) await store.downloadKeys.create({ keyHash, userId: user.id, target: "image:7", expiresAt });
      await withSecondStore(async (other) => {
        const at = new Date();
        const results = await Promise.all(
          keys.flatMap((k) => [
            store.downloadKeys.consume(k, "image:7", at),
            other.downloadKeys.consume(k, "image:7", at),
            other.downloadKeys.consume(k, "image:7", at),
          ]),
        );
        for (let i = 0; i < keys.length; i++) {
          const winners = results.slice(i * 3, i * 3 + 3).filter((r) => r !== undefined);
          expect(winners, keys[i]).toHaveLength(1);
          expect(winners[0]).toMatchObject({ keyHash: keys[i], target: "image:7" });
        }
      });
    });

    it("deletes expired keys and every key of a target", async () => {
      const user = await newUser();
      const t0 = Date.UTC(2030, 0, 1);
      const mk = (keyHash: string, target: string, expiresMs: number) =>
        store.downloadKeys.create({ keyHash: `${user.id}-${keyHash}`, userId: user.id, target, expiresAt: new Date(expiresMs) });
      await mk("old1", "artifact:90", t0 - 1);
      await mk("old2", "artifact:91", t0);
      await mk("fresh", "artifact:90", t0 + 1);
      await mk("fresh2", "artifact:90", t0 + 2);
      await mk("fresh3", "image:90", t0 + 2);
      // Keys of earlier tests expire long before t0, so they are counted too: count ours only.
      const before = await database.query(`SELECT count(*) AS n FROM download_keys WHERE expires_at <= ${t0}`);
      const removed = await store.downloadKeys.deleteExpired(new Date(t0));
      expect(removed).toBe(Number(before[0]!.n));
      expect(removed).toBeGreaterThanOrEqual(2);
      expect(await store.downloadKeys.peek(`${user.id}-fresh`, "artifact:90", new Date(t0))).toBeDefined();
      expect(await store.downloadKeys.deleteForTarget("artifact:90")).toBe(2);
      expect(await store.downloadKeys.peek(`${user.id}-fresh`, "artifact:90", new Date(t0))).toBeUndefined();
      expect(await store.downloadKeys.peek(`${user.id}-fresh3`, "image:90", new Date(t0))).toBeDefined();
      expect(await store.downloadKeys.deleteForTarget("artifact:90")).toBe(0);
    });
  });

  describe("jobs", () => {
    it("claims each queued job once, oldest first, and only grows its percentage", async () => {
      const u = await newUser();
      const a = await store.jobs.create({ kind: "generate", userId: u.id });
      const b = await store.jobs.create({ kind: "generate", userId: u.id });
      expect(a.state).toBe("queued");
      const claims = await Promise.all([store.jobs.claimNext(["generate"]), store.jobs.claimNext(["generate"]), store.jobs.claimNext(["generate"])]);
      const ids = claims.filter((c) => c !== undefined).map((c) => c!.id);
      expect(ids.sort()).toEqual([a.id, b.id].sort());
      expect(claims.filter((c) => c !== undefined).every((c) => c!.state === "running" && c!.attempts === 1)).toBe(true);
      await store.jobs.progress(a.id, { percentage: 40, message: "unpacking" });
      await store.jobs.progress(a.id, { percentage: 25, message: "writing layers" });
      const j = (await store.jobs.get(a.id))!;
      expect(j.percentage).toBe(40);
      expect(j.message).toBe("writing layers");
      const done = await store.jobs.finish(a.id, { state: "complete" });
      expect(done).toMatchObject({ state: "complete", percentage: 100 });
      expect(await store.jobs.finish(a.id, { state: "error", errorMessage: "late" })).toBeUndefined();
      await store.jobs.progress(a.id, { percentage: 10 });
      expect((await store.jobs.get(a.id))!.state).toBe("complete");
      expect(await store.jobs.claimNext(["publish"])).toBeUndefined();
    });

    it("cancels a queued job at once and flags a running one", async () => {
      const u = await newUser();
      const q = await store.jobs.create({ kind: "publish", userId: u.id });
      expect((await store.jobs.requestCancel(q.id))!.state).toBe("cancelled");
      const r = await store.jobs.create({ kind: "publish", userId: u.id });
      await store.jobs.claimNext(["publish"]);
      const flagged = (await store.jobs.requestCancel(r.id))!;
      expect(flagged.state).toBe("running");
      expect(flagged.cancelRequested).toBe(true);
    });

    it("resumes a job whose lease lapsed, and fails it after too many attempts", async () => {
      const u = await newUser();
      const j = await store.jobs.create({ kind: "generate", userId: u.id });
      const lease = { owner: "w1", ms: 1000, maxAttempts: 2, interruptedMessage: "interrupted by a restart" };
      // Other tests' jobs share the queue: claim until this one is running.
      const claimUntil = async (owner: string): Promise<JobRow> => {
        for (;;) {
          const c = await store.jobs.claimNext(["generate"], { ...lease, owner });
          if (!c) throw new Error(`job ${j.id} was not claimable`);
          if (c.id === j.id) return c;
          await store.jobs.finish(c.id, { state: "complete" });
        }
      };
      const first = await claimUntil("w1");
      expect(first).toMatchObject({ state: "running", attempts: 1, leaseOwner: "w1" });
      // Held: nobody else gets it while the lease runs, renewed or not.
      expect((await store.jobs.claimNext(["generate"], { ...lease, owner: "w2" }))?.id).not.toBe(j.id);
      nowMs += 900;
      expect(await store.jobs.renew(j.id, first.leaseToken, 1000)).toEqual({ cancelRequested: false });
      nowMs += 900;
      expect((await store.jobs.claimNext(["generate"], { ...lease, owner: "w2" }))?.id).not.toBe(j.id);
      // Lapsed: another worker resumes it, under a new token.
      nowMs += 1001;
      const second = await claimUntil("w2");
      expect(second).toMatchObject({ attempts: 2, leaseOwner: "w2", message: "resuming (its worker stopped)" });
      expect(second.leaseToken).toBeGreaterThan(first.leaseToken);
      nowMs += 1001;
      // Out of attempts: the next claimer fails it instead of running it a third time.
      await store.jobs.claimNext(["generate"], { ...lease, owner: "w3" });
      expect(await store.jobs.get(j.id)).toMatchObject({ state: "error", errorMessage: "interrupted by a restart", leaseOwner: null });
    });

    it("never writes for a worker whose lease was taken over, even once it resumes", async () => {
      const u = await newUser();
      const j = await store.jobs.create({ kind: "publish", userId: u.id });
      const lease = (owner: string) => ({ owner, ms: 1000, maxAttempts: 5, interruptedMessage: "interrupted" });
      let old: JobRow | undefined;
      while ((old = await store.jobs.claimNext(["publish"], lease("paused"))) && old.id !== j.id) await store.jobs.finish(old.id, { state: "complete" });
      expect(old?.id).toBe(j.id);
      // The worker pauses past its lease; another takes the job over and makes progress.
      nowMs += 5000;
      let fresh: JobRow | undefined;
      while ((fresh = await store.jobs.claimNext(["publish"], lease("fresh"))) && fresh.id !== j.id) await store.jobs.finish(fresh.id, { state: "complete" });
      expect(fresh?.id).toBe(j.id);
      await store.jobs.progress(j.id, { percentage: 30, message: "fresh at work" }, fresh!.leaseToken);
      // The paused worker wakes up: its renewal says it lost the job, and none of its writes land.
      expect(await store.jobs.renew(j.id, old!.leaseToken, 1000)).toBeUndefined();
      await store.jobs.progress(j.id, { percentage: 90, message: "stale" }, old!.leaseToken);
      await expectKilnError(
        store.transaction(async (tx) => {
          await tx.jobs.fence(j.id, old!.leaseToken);
          await tx.users.update(u.id, { surname: "written by the stale worker" });
        }),
        "conflict",
        /taken over/,
      );
      expect((await store.users.get(u.id))!.surname).toBeNull();
      expect(await store.jobs.finish(j.id, { state: "error", errorMessage: "stale" }, old!.leaseToken)).toBeUndefined();
      expect(await store.jobs.release(j.id, old!.leaseToken)).toBe(false);
      expect(await store.jobs.get(j.id)).toMatchObject({ state: "running", percentage: 30, message: "fresh at work", leaseOwner: "fresh" });
      // The owner's own writes go through.
      await store.transaction(async (tx) => tx.jobs.fence(j.id, fresh!.leaseToken));
      expect(await store.jobs.finish(j.id, { state: "complete" }, fresh!.leaseToken)).toMatchObject({ state: "complete", leaseOwner: null });
    });

    it("hands each job to exactly one of many concurrent claimers, across connections", async () => {
      const u = await newUser();
      const created = await Promise.all(Array.from({ length: 12 }, () => store.jobs.create({ kind: "generate", userId: u.id })));
      const mine = new Set(created.map((c) => c.id));
      const claimed = await claimConcurrently(async (s, i) => {
        const c = await s.jobs.claimNext(["generate"], { owner: `w${i}`, ms: 60_000, maxAttempts: 3, interruptedMessage: "x" });
        return c ? [c.id] : [];
      });
      const ours = claimed.filter((id) => mine.has(id));
      expect(ours.sort((a, b) => a - b)).toEqual([...mine].sort((a, b) => a - b));
      expect(new Set(claimed).size).toBe(claimed.length);
      for (const id of claimed) await store.jobs.finish(id, { state: "complete" });
    });

    it("ends a lapsed job that was asked to cancel, gives jobs back on release, and retries a released job", async () => {
      const u = await newUser();
      const lease = { owner: "w", ms: 1000, maxAttempts: 3, interruptedMessage: "x" };
      const a = await store.jobs.create({ kind: "publish", userId: u.id });
      let c: JobRow | undefined;
      while ((c = await store.jobs.claimNext(["publish"], lease)) && c.id !== a.id) await store.jobs.finish(c.id, { state: "complete" });
      expect((await store.jobs.renew(a.id, c!.leaseToken, 1000))!.cancelRequested).toBe(false);
      expect((await store.jobs.requestCancel(a.id))!.cancelRequested).toBe(true);
      expect((await store.jobs.renew(a.id, c!.leaseToken, 1000))!.cancelRequested).toBe(true);
      nowMs += 2000;
      await store.jobs.claimNext(["publish"], lease);
      expect(await store.jobs.get(a.id)).toMatchObject({ state: "cancelled" });

      const b = await store.jobs.create({ kind: "publish", userId: u.id });
      while ((c = await store.jobs.claimNext(["publish"], lease)) && c.id !== b.id) await store.jobs.finish(c.id, { state: "complete" });
      expect(await store.jobs.release(b.id, c!.leaseToken)).toBe(true);
      expect(await store.jobs.get(b.id)).toMatchObject({ state: "queued", leaseOwner: null });
      while ((c = await store.jobs.claimNext(["publish"], lease)) && c.id !== b.id) await store.jobs.finish(c.id, { state: "complete" });
      expect(c).toMatchObject({ id: b.id, attempts: 2, message: "starting" });
      // A single process at start lets every lease lapse: its own earlier jobs resume at once.
      expect(await store.jobs.expireLeases()).toBeGreaterThanOrEqual(1);
      const again = await store.jobs.claimNext(["publish"], { ...lease, owner: "restarted" });
      expect(again).toMatchObject({ id: b.id, attempts: 3, leaseOwner: "restarted" });
      await store.jobs.finish(b.id, { state: "complete" }, again!.leaseToken);
    });
  });

  describe("leftovers", () => {
    it("records a failed deletion once per blob or tag, counting the attempts, and claims only what is due", async () => {
      await store.leftovers.record("blob", "sha256:" + "a".repeat(64), "405 from the registry", 0);
      await store.leftovers.record("tag", "registry.test/kiln/u/app:1-1", "connection refused", 60_000);
      await store.leftovers.record("blob", "sha256:" + "a".repeat(64), "405 again", 0);
      const rows = await store.leftovers.list();
      expect(rows.map((r) => [r.kind, r.attempts, r.lastError])).toEqual([
        ["blob", 2, "405 again"],
        ["tag", 1, "connection refused"],
      ]);
      expect(rows[1]!.nextAttempt.getTime()).toBe(nowMs + 60_000);

      // Only the blob is due; while claimed, nobody else gets it.
      const [claim, ...more] = await store.leftovers.claimDue(10, 30_000);
      expect(more).toEqual([]);
      expect(claim).toMatchObject({ kind: "blob", attempts: 2, nextAttempt: new Date(nowMs + 30_000) });
      expect(await store.leftovers.claimDue(10, 30_000)).toEqual([]);
      expect(await store.leftovers.retryLater(claim!, "405 a third time", 120_000)).toBe(true);
      expect((await store.leftovers.list())[0]).toMatchObject({ attempts: 3, lastError: "405 a third time", nextAttempt: new Date(nowMs + 120_000) });
      // The claim ended with its try: it cannot end another.
      expect(await store.leftovers.forget(claim!)).toBe(false);

      nowMs += 120_000;
      const both = await store.leftovers.claimDue(10, 30_000);
      expect(both.map((r) => r.kind).sort()).toEqual(["blob", "tag"]);
      // Recorded again meanwhile (a new failure): the row is no longer this claim's to drop.
      const tag = both.find((r) => r.kind === "tag")!;
      await store.leftovers.record("tag", tag.name, "refused again", 0);
      expect(await store.leftovers.forget(tag)).toBe(false);
      expect(await store.leftovers.forget(both.find((r) => r.kind === "blob")!)).toBe(true);
      expect((await store.leftovers.list()).map((r) => [r.kind, r.attempts])).toEqual([["tag", 2]]);
      const [again] = await store.leftovers.claimDue(10, 30_000);
      expect(await store.leftovers.forget(again!)).toBe(true);
      expect(await store.leftovers.list()).toEqual([]);
    });

    it("hands each due record to exactly one of many concurrent claimers, across connections", async () => {
      for (let i = 0; i < 12; i++) await store.leftovers.record("blob", `sha256:${i.toString(16).padStart(64, "0")}`, "refused", 0);
      const claimed = await claimConcurrently(async (s) => (await s.leftovers.claimDue(2, 60_000)).map((r) => r.id));
      expect(claimed.length).toBe(12);
      expect(new Set(claimed).size).toBe(12);
      for (const r of await store.leftovers.list()) await store.transaction(async (tx) => void (await tx.leftovers.forget(r)));
      expect(await store.leftovers.list()).toEqual([]);
    });
  });

  describe("images and publications", () => {
    it("numbers revisions per template, records results, and deletes with jobs and publications", async () => {
      const u = await newUser();
      const b = await store.bundles.create(bundleFields(u.id));
      const [dist] = await store.distributions.sync([{ name: "Debian", version: "12", arch: "x86_64" }]);
      const t = await store.templates.create({ userId: u.id, bundleId: b.id, distributionId: dist!.id });
      const make = async () => {
        const job = await store.jobs.create({ kind: "generate", userId: u.id });
        return store.images.create({ userId: u.id, bundleId: b.id, templateId: t.id, distributionId: dist!.id, jobId: job.id, formatId: 1, compress: true, entrypoint: '["/bin/sh"]', name: "nginx", version: "1.0" });
      };
      const i1 = await make();
      const i2 = await make();
      expect([i1.revision, i2.revision]).toEqual([1, 2]);
      const updated = await store.images.update(i1.id, { fileName: "nginx-1.0-docker.tar.gz", fileSize: 1234, fileDigest: "sha256:" + "a".repeat(64), manifestDigest: "sha256:" + "b".repeat(64), packages: [{ name: "libc6", version: "2.36-9", arch: "amd64" }] });
      expect(updated).toMatchObject({ fileSize: 1234, packages: [{ name: "libc6", version: "2.36-9", arch: "amd64" }] });
      expect(await store.images.referencesBlob("sha256:" + "a".repeat(64))).toBe(true);
      expect(await store.images.referencesBlob("sha256:" + "b".repeat(64))).toBe(true);
      expect(await store.images.referencesBlob("sha256:" + "c".repeat(64))).toBe(false);
      expect(await store.images.getByJob(i1.jobId)).toMatchObject({ id: i1.id });

      const other = await newUser();
      expect(await store.images.get(other.id, t.id, i1.id)).toBeUndefined();
      expect(await store.images.listByTemplate(u.id, t.id)).toHaveLength(2);

      const acct = await store.cloudAccounts.create({ userId: u.id, name: "hub", type: "docker", url: "http://127.0.0.1:5000", login: "u", secretEnc: "v1:x:y:z" });
      const pjob = await store.jobs.create({ kind: "publish", userId: u.id });
      const p = await store.publications.create({ userId: u.id, imageId: i1.id, accountId: acct.id, formatId: 1, namespace: "team", repository: "nginx", tag: "1.0", registry: "127.0.0.1:5000", jobId: pjob.id });
      expect(await store.publications.pushedRepositories(acct.id, "127.0.0.1:5000")).toEqual([]);
      await store.jobs.claimNext(["publish"]);
      await store.jobs.finish(pjob.id, { state: "complete" });
      await store.publications.update(p.id, { cloudId: "127.0.0.1:5000/team/nginx@sha256:" + "c".repeat(64), registeringName: "127.0.0.1:5000/team/nginx:1.0" });
      expect(await store.publications.pushedRepositories(acct.id, "127.0.0.1:5000")).toEqual(["team/nginx"]);
      expect(await store.publications.get(other.id, i1.id, p.id)).toBeUndefined();
      expect(await store.publications.listByUser(u.id)).toHaveLength(1);

      expect(await store.images.delete(other.id, i1.id)).toBe(false);
      expect(await store.images.delete(u.id, i1.id)).toBe(true);
      expect(await store.images.getById(i1.id)).toBeUndefined();
      expect(await store.publications.getById(p.id)).toBeUndefined();
      expect(await store.jobs.get(i1.jobId)).toBeUndefined();
      expect(await store.jobs.get(pjob.id)).toBeUndefined();
      // Deleting the template takes the remaining image with it.
      await store.templates.delete(u.id, b.id, t.id);
      expect(await store.images.getById(i2.id)).toBeUndefined();
    });
  });

  describe("ownership", () => {
    it("makes another user's objects behave exactly like missing ones", async () => {
      const alice = await newUser();
      const bob = await newUser();
      const bundle = await store.bundles.create(bundleFields(alice.id, { name: "secret-bundle" }));
      const missingId = bundle.id + 100_000;
      for (const id of [bundle.id, missingId]) {
        expect(await store.bundles.get(bob.id, id)).toBeUndefined();
        expect(await store.bundles.update(bob.id, id, { name: "pwned" })).toBeUndefined();
        expect(await store.bundles.setRestriction(bob.id, id, bundle.restrictionId, "x")).toBeUndefined();
        expect(await store.bundles.clone(bob.id, id, {})).toBeUndefined();
        expect(await store.bundles.delete(bob.id, id)).toBe(false);
      }
      expect(await store.bundles.list(bob.id, { query: "name=='*secret*'" })).toEqual({ items: [], total: 0 });
      expect(await store.bundles.get(alice.id, bundle.id)).toEqual(bundle);
      expect((await store.bundles.list(alice.id, { query: "name=='*secret*'" })).items).toEqual([bundle]);
    });
  });

  describe("cascades", () => {
    it("deletes a bundle's artifacts and templates with it", async () => {
      const dist = (await store.distributions.sync([{ name: "Debian", version: "12", arch: "x86_64" }]))[0]!;
      const owner = await newUser();
      const bundle = await store.bundles.create(bundleFields(owner.id));
      const keep = await store.bundles.create(bundleFields(owner.id, { name: "keep" }));
      const folder = await store.artifacts.create(artifactFields(bundle.id, null, "folder", "d"));
      const file = await store.artifacts.create(artifactFields(bundle.id, folder.id, "file", "f"));
      const template = await store.templates.create({ userId: owner.id, bundleId: bundle.id, distributionId: dist.id });
      const kept = await store.templates.create({ userId: owner.id, bundleId: keep.id, distributionId: dist.id });
      expect(await store.bundles.delete(owner.id, bundle.id)).toBe(true);
      expect(await store.artifacts.get(bundle.id, file.id)).toBeUndefined();
      expect(await store.artifacts.listAll(bundle.id)).toEqual([]);
      expect(await store.templates.get(owner.id, bundle.id, template.id)).toBeUndefined();
      expect(await store.templates.get(owner.id, keep.id, kept.id)).toEqual(kept);
      const left = await database.query(`SELECT count(*) AS n FROM artifacts WHERE bundle_id = ${bundle.id}`);
      expect(Number(left[0]!.n)).toBe(0);
    });

    it("deletes everything of a user with the user", async () => {
      const dist = (await store.distributions.sync([{ name: "Debian", version: "12", arch: "x86_64" }]))[0]!;
      const user = await newUser();
      const neighbour = await newUser();
      const bundle = await store.bundles.create(bundleFields(user.id));
      const art = await store.artifacts.create(artifactFields(bundle.id, null, "file", "f"));
      const template = await store.templates.create({ userId: user.id, bundleId: bundle.id, distributionId: dist.id });
      const key = await store.apiKeys.create({ userId: user.id, name: null, description: null, publicKey: `cascade-${user.id}`, secretEnc: "s" });
      const account = await store.cloudAccounts.create({ userId: user.id, name: "hub", type: "docker", url: "https://r", login: "u", secretEnc: "s" });
      const expiresAt = new Date(Date.now() + 60_000);
      await store.downloadKeys.create({ keyHash: `cascade-${user.id}`, userId: user.id, target: `artifact:${art.id}`, expiresAt });
      const theirs = await store.bundles.create(bundleFields(neighbour.id));

      expect(await store.users.delete(user.id)).toBe(true);
      expect(await store.bundles.get(user.id, bundle.id)).toBeUndefined();
      expect(await store.artifacts.get(bundle.id, art.id)).toBeUndefined();
      expect(await store.templates.get(user.id, bundle.id, template.id)).toBeUndefined();
      expect(await store.apiKeys.getByPublicKey(key.publicKey)).toBeUndefined();
      expect(await store.cloudAccounts.get(user.id, account.id)).toBeUndefined();
      expect(await store.downloadKeys.peek(`cascade-${user.id}`, `artifact:${art.id}`, new Date())).toBeUndefined();
      expect(await store.bundles.get(neighbour.id, theirs.id)).toEqual(theirs);
      for (const table of ["bundles", "api_keys", "cloud_accounts", "templates", "download_keys"]) {
        const left = await database.query(`SELECT count(*) AS n FROM ${table} WHERE user_id = ${user.id}`);
        expect(Number(left[0]!.n), table).toBe(0);
      }
    });
  });

  describe("transactions", () => {
    it("commits what the function did and returns its value", async () => {
      seq++;
      const login = `tx-commit-${seq}`;
      const result = await store.transaction(async (tx) => {
        const user = await tx.users.create({ login, email: null, firstName: null, surname: null, passwordHash: "h", admin: false, active: true, entitlements: [] });
        const bundle = await tx.bundles.create(bundleFields(user.id));
        await tx.artifacts.create(artifactFields(bundle.id, null, "file", "f"));
        const clone = await tx.bundles.clone(user.id, bundle.id, { name: "copy" });
        // Reads inside the transaction see its own writes.
        expect((await tx.bundles.list(user.id, {})).total).toBe(2);
        return { user, clone };
      });
      expect(await store.users.getByLogin(login)).toEqual(result.user);
      expect((await store.artifacts.listAll(result.clone!.id)).map((r) => r.name)).toEqual(["f"]);
    });

    it("rolls everything back when the function fails", async () => {
      seq++;
      const login = `tx-rollback-${seq}`;
      const existing = await newUser();
      let bundleId = 0;
      const failure = store.transaction(async (tx) => {
        const user = await tx.users.create({ login, email: null, firstName: null, surname: null, passwordHash: "h", admin: false, active: true, entitlements: [] });
        const bundle = await tx.bundles.create(bundleFields(user.id));
        bundleId = bundle.id;
        await tx.artifacts.create(artifactFields(bundle.id, null, "file", "f"));
        await tx.users.update(existing.id, { surname: "changed" });
        throw new Error("boom");
      });
      await expect(failure).rejects.toThrow("boom");
      expect(bundleId).toBeGreaterThan(0);
      expect(await store.users.getByLogin(login)).toBeUndefined();
      expect(await store.artifacts.listAll(bundleId)).toEqual([]);
      expect(await store.users.get(existing.id)).toEqual(existing);

      // A store error inside the transaction rolls back too, and arrives translated.
      const conflict = store.transaction(async (tx) => {
        await tx.users.update(existing.id, { surname: "changed again" });
        await tx.users.create({ login: existing.login, email: null, firstName: null, surname: null, passwordHash: "h", admin: false, active: true, entitlements: [] });
      });
      await expectKilnError(conflict, "conflict");
      expect(await store.users.get(existing.id)).toEqual(existing);
    });
  });

  describe("blob locks", () => {
    it("make a second transaction locking the same digest wait for the first to end", async () => {
      const digest = `sha256:${"7".repeat(63)}${seq++ % 10}`;
      const events: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const firstLocked = new Promise<void>((resolve) => (locked = resolve));
      const first = store.transaction(async (tx) => {
        await tx.blobLocks.lock(digest);
        events.push("first locked");
        locked();
        await held;
        events.push("first ends");
      });
      await firstLocked;
      const second = store.transaction(async (tx) => {
        await tx.blobLocks.lock(digest);
        events.push("second locked");
        await tx.blobLocks.forget(digest);
      });
      // Whatever the second is doing meanwhile, it cannot hold the lock before the first ends.
      await new Promise((r) => setImmediate(r));
      release();
      await Promise.all([first, second]);
      expect(events).toEqual(["first locked", "first ends", "second locked"]);
    });

    it("are only taken inside a transaction", async () => {
      await expect(store.blobLocks.lock(`sha256:${"8".repeat(64)}`)).rejects.toThrow(/transaction/);
    });
  });

  describe("sortable fields", () => {
    it.each(Object.keys(SORTABLE_FIELDS) as ListFamily[])("accepts every whitelisted field of %s in both directions and refuses others", async (family) => {
      const user = await newUser();
      const bundle = await store.bundles.create(bundleFields(user.id));
      const lists: Record<ListFamily, (c: { orderBy?: string; descending?: boolean }) => Promise<{ items: Array<{ id: number }>; total: number }>> = {
        users: (c) => store.users.list(c),
        apiKeys: (c) => store.apiKeys.list(user.id, c),
        distributions: (c) => store.distributions.list(c),
        bundles: (c) => store.bundles.list(user.id, c),
        cloudAccounts: (c) => store.cloudAccounts.list(user.id, c),
        templates: (c) => store.templates.list(user.id, bundle.id, c),
      };
      const list = lists[family];
      const unordered = await list({});
      for (const field of SORTABLE_FIELDS[family]) {
        for (const descending of [false, true]) {
          const page = await list({ orderBy: field, descending });
          expect(page.total, `${family}.${field}`).toBe(unordered.total);
          expect(page.items.map((r) => r.id).sort((x, y) => x - y)).toEqual(unordered.items.map((r) => r.id).sort((x, y) => x - y));
        }
      }
      await expectKilnError(list({ orderBy: "nonsense" }), "invalidQuery", new RegExp(SORTABLE_FIELDS[family].join(", ")));
    });
  });
});

describe("openStore", () => {
  it("refuses a database URL that is not PostgreSQL, naming KILN_DATABASE_URL and not the URL", async () => {
    await expectKilnError(openStore({ dataDir: "/nonexistent", databaseUrl: "mysql://root:hunter2@127.0.0.1/kiln" }), "badRequest", /KILN_DATABASE_URL/);
    const err = await openStore({ dataDir: "/nonexistent", databaseUrl: "not a url hunter2" }).catch((e: unknown) => e);
    expect(isKilnError(err, "badRequest")).toBe(true);
    expect((err as Error).message).not.toContain("hunter2");
  });

  it("reports an unreachable PostgreSQL as unavailable", async () => {
    await expectKilnError(openStore({ dataDir: "/nonexistent", databaseUrl: "postgresql://postgres@127.0.0.1:1/kiln" }), "unavailable");
  });
});
