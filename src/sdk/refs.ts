/**
 * Where objects live. The API nests images under templates under bundles, and objects name each
 * other by URI (`users/alice/mysoftware/3/templates/7/images/12`); these references let a caller
 * hold either the ids or an object it was given, and get back to the ids the paths need.
 */

/** A container template: its bundle and its own id. */
export interface TemplateRef {
  bundleId: number;
  templateId: number;
}

/** A generated image. */
export interface ImageRef extends TemplateRef {
  imageId: number;
}

/** A published image. */
export interface PublicationRef extends ImageRef {
  publicationId: number;
}

/** Anything that carries its `uri` (objects returned by the API). */
export interface HasUri {
  uri?: string;
}

const TEMPLATE_RE = /(?:^|\/)users\/[^/]+\/mysoftware\/(\d+)\/templates\/(\d+)(?=\/|$)/;
const IMAGE_RE = /(?:^|\/)users\/[^/]+\/mysoftware\/(\d+)\/templates\/(\d+)\/images\/(\d+)(?=\/|$)/;
const PUBLICATION_RE = /(?:^|\/)users\/[^/]+\/mysoftware\/(\d+)\/templates\/(\d+)\/images\/(\d+)\/pimages\/(\d+)(?=\/|$)/;

function uriOf(x: string | HasUri, what: string): string {
  const uri = typeof x === "string" ? x : x.uri;
  if (!uri) throw new TypeError(`this ${what} has no uri`);
  return uri;
}

/** The ids of a template, from a reference, a URI or an object with its `uri`. */
export function templateRef(x: TemplateRef | HasUri | string): TemplateRef {
  if (typeof x === "object" && "templateId" in x) return { bundleId: x.bundleId, templateId: x.templateId };
  const m = TEMPLATE_RE.exec(uriOf(x, "template"));
  if (!m) throw new TypeError(`"${uriOf(x, "template")}" is not a container template URI`);
  return { bundleId: Number(m[1]), templateId: Number(m[2]) };
}

/** The ids of an image, from a reference, a URI or an image object. */
export function imageRef(x: ImageRef | HasUri | string): ImageRef {
  if (typeof x === "object" && "imageId" in x) return { bundleId: x.bundleId, templateId: x.templateId, imageId: x.imageId };
  const m = IMAGE_RE.exec(uriOf(x, "image"));
  if (!m) throw new TypeError(`"${uriOf(x, "image")}" is not an image URI`);
  return { bundleId: Number(m[1]), templateId: Number(m[2]), imageId: Number(m[3]) };
}

/** The ids of a published image, from a reference, a URI or a publishImage object. */
export function publicationRef(x: PublicationRef | HasUri | string): PublicationRef {
  if (typeof x === "object" && "publicationId" in x) return { bundleId: x.bundleId, templateId: x.templateId, imageId: x.imageId, publicationId: x.publicationId };
  const m = PUBLICATION_RE.exec(uriOf(x, "published image"));
  if (!m) throw new TypeError(`"${uriOf(x, "published image")}" is not a published image URI`);
  return { bundleId: Number(m[1]), templateId: Number(m[2]), imageId: Number(m[3]), publicationId: Number(m[4]) };
}
