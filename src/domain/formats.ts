/**
 * The container target formats and platforms Kiln produces and publishes to. Fixed, so their
 * ids are constants; the restriction rules of bundles filter them.
 */

export interface ContainerFormat {
  id: number;
  /** UForge's target format name (`Docker`, `OpenShift`). */
  name: string;
  type: "container";
  /** UForge's image format name. */
  imageFormat: "docker" | "openshift";
  /** The cloud account type that can publish it. */
  credAccountType: "docker" | "openshift";
  /** The target platform it publishes to. */
  platformId: number;
  /** Does the image run as an arbitrary non-root user (OpenShift's default)? */
  arbitraryUser: boolean;
  description: string;
}

export interface ContainerPlatform {
  id: number;
  name: string;
  type: "docker" | "openshift";
  formatIds: number[];
  accountInfos: string;
}

export const CONTAINER_FORMATS: readonly ContainerFormat[] = [
  {
    id: 1,
    name: "Docker",
    type: "container",
    imageFormat: "docker",
    credAccountType: "docker",
    platformId: 1,
    arbitraryUser: false,
    description: "A Docker/OCI image: docker-archive download or push to any OCI registry",
  },
  {
    id: 2,
    name: "OpenShift",
    type: "container",
    imageFormat: "openshift",
    credAccountType: "openshift",
    platformId: 2,
    arbitraryUser: true,
    description: "A Docker/OCI image that runs as an arbitrary non-root user, for OpenShift",
  },
];

export const CONTAINER_PLATFORMS: readonly ContainerPlatform[] = [
  { id: 1, name: "Docker", type: "docker", formatIds: [1], accountInfos: "endpointUrl, login and password of a container registry" },
  { id: 2, name: "OpenShift", type: "openshift", formatIds: [2], accountInfos: "registryUrl of the OpenShift registry and a token" },
];

export function formatById(id: number): ContainerFormat | undefined {
  return CONTAINER_FORMATS.find((f) => f.id === id);
}

/** By UForge target-format name, ignoring case (`docker` finds `Docker`). */
export function formatByName(name: string): ContainerFormat | undefined {
  return CONTAINER_FORMATS.find((f) => f.name.toLowerCase() === name.toLowerCase());
}

/** The facts a restriction rule sees about a format. */
export function formatFacts(f: ContainerFormat): Record<string, string> {
  return { name: f.name, type: f.type };
}
