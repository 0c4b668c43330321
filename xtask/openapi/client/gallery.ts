// The calls the gallery's browser front end makes, typed from the API's own
// OpenAPI document: `openapi.d.ts` beside this file is generated from
// docs/openapi.json (`npm run generate`), so a field renamed, retyped or
// removed in the API fails `npm run typecheck` here before it fails a browser.

import type { components, paths } from "./openapi";

export type Schemas = components["schemas"];

/** Where the API is, and the caller's token (none for the public gallery). */
export interface Api {
  /** The API's origin, e.g. `https://gallery.example`; `""` for the page's own origin. */
  baseUrl: string;
  /** Sent as `x-gallery-token` (not `Authorization`, which the CDN replaces). */
  token?: string;
}

/** An answer other than 2xx, with its RFC 9457 problem document when it has one. */
export class ApiProblem extends Error {
  readonly status: number;
  readonly problem: Schemas["Problem"] | null;

  constructor(status: number, problem: Schemas["Problem"] | null) {
    super(problem ? `${problem.status} ${problem.title}: ${problem.detail}` : `HTTP ${status}`);
    this.name = "ApiProblem";
    this.status = status;
    this.problem = problem;
  }
}

// ---------------------------------------------------------------------------
// A typed `request` over `paths`: the method and path template pick the
// operation; its path, query and header parameters, its JSON body and its
// 2xx JSON answer are all the generated types.

type Method = "get" | "post" | "put" | "patch" | "delete";

/** The header every write carries, which `request` computes itself. */
const CONTENT_SHA256 = "x-amz-content-sha256";

/** The path templates with an operation for `M`. */
export type PathsWith<M extends Method> = Extract<
  { [P in keyof paths]: paths[P][M] extends undefined ? never : P }[keyof paths],
  keyof paths
>;

type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

type Field<T, K extends PropertyKey> = K extends keyof T ? NonNullable<T[K]> : never;
/** `T` less `K`; `never` when nothing is left (so a header the operation lost cannot still be sent). */
type Without<T, K extends PropertyKey> = [T] extends [never]
  ? never
  : [keyof Omit<T, K>] extends [never]
    ? never
    : Omit<T, K>;
type ParametersOf<O> = O extends { parameters: infer X } ? X : never;
type ResponsesOf<O> = O extends { responses: infer R } ? R : never;

/** `{ [name]: T }` when T has a required member, `{ [name]?: T }` when all are optional, else nothing. */
type Slot<Name extends string, T> = [T] extends [never]
  ? { [K in Name]?: never }
  : {} extends T
    ? { [K in Name]?: T }
    : { [K in Name]: T };

type JsonBody<B> = [B] extends [never]
  ? never
  : B extends { content: { "application/json": infer J } }
    ? J
    : never;
type BodyOf<O> = O extends { requestBody?: infer B } ? JsonBody<NonNullable<B>> : never;
type BodySlot<O> = [BodyOf<O>] extends [never]
  ? { body?: never }
  : O extends { requestBody: unknown }
    ? { body: BodyOf<O> }
    : { body?: BodyOf<O> };

/** What a call to `P` with `M` takes: path, query and header parameters and the body. */
export type RequestInit<P extends keyof paths, M extends Method> = Slot<
  "path",
  Field<ParametersOf<Operation<P, M>>, "path">
> &
  Slot<"query", Field<ParametersOf<Operation<P, M>>, "query">> &
  Slot<"header", Without<Field<ParametersOf<Operation<P, M>>, "header">, typeof CONTENT_SHA256>> &
  BodySlot<Operation<P, M>>;

type Success<R> = R extends { 200: infer S }
  ? S
  : R extends { 201: infer S }
    ? S
    : R extends { 202: infer S }
      ? S
      : R extends { 204: infer S }
        ? S
        : never;
type JsonOf<S> = S extends { content: { "application/json": infer J } } ? J : undefined;

/** The JSON of the operation's success answer (200, else 201, 202, 204: `undefined` without content). */
export type ResponseBody<P extends keyof paths, M extends Method> = JsonOf<
  Success<ResponsesOf<Operation<P, M>>>
>;

/** A success answer: its JSON, and the headers a front end acts on. */
export interface Answer<T> {
  data: T;
  status: number;
  /** What the next update of this resource sends as `If-Match`. */
  etag: string | null;
  /** Where a created resource is. */
  location: string | null;
}

/** Hex SHA-256 of `text` as UTF-8: `x-amz-content-sha256`, which the CDN and the API check. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Calls `method path` and answers its 2xx JSON; anything else throws `ApiProblem`. */
export async function request<M extends Method, P extends PathsWith<M>>(
  api: Api,
  method: M,
  path: P,
  ...[init]: {} extends RequestInit<P, M> ? [init?: RequestInit<P, M>] : [init: RequestInit<P, M>]
): Promise<Answer<ResponseBody<P, M>>> {
  // The generated types checked `init` at the call; from here on it is plain data.
  const given = (init ?? {}) as {
    path?: Record<string, string | number>;
    query?: Record<string, string | number | boolean | null | undefined>;
    header?: Record<string, string | null | undefined>;
    body?: unknown;
  };

  const url = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = given.path?.[name];
    if (value === undefined) throw new Error(`${path}: no value for {${name}}`);
    return encodeURIComponent(String(value));
  });
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(given.query ?? {})) {
    if (value !== undefined && value !== null) query.append(name, String(value));
  }

  const headers = new Headers({ accept: "application/json, application/problem+json" });
  if (api.token) headers.set("x-gallery-token", api.token);
  for (const [name, value] of Object.entries(given.header ?? {})) {
    if (value !== undefined && value !== null) headers.set(name, value);
  }
  const body = given.body === undefined ? undefined : JSON.stringify(given.body);
  if (body !== undefined) headers.set("content-type", "application/json");
  if (method === "post" || method === "put" || method === "patch") {
    // Of the exact bytes sent; of the empty body when there is none.
    headers.set(CONTENT_SHA256, await sha256Hex(body ?? ""));
  }

  const response = await fetch(`${api.baseUrl}${url}${query.size ? `?${query}` : ""}`, {
    method: method.toUpperCase(),
    headers,
    body,
  });
  if (!response.ok) {
    const type = response.headers.get("content-type") ?? "";
    const problem = type.includes("json") ? ((await response.json()) as Schemas["Problem"]) : null;
    throw new ApiProblem(response.status, problem);
  }
  const data = (response.status === 204 ? undefined : await response.json()) as ResponseBody<P, M>;
  return {
    data,
    status: response.status,
    etag: response.headers.get("etag"),
    location: response.headers.get("location"),
  };
}

// ---------------------------------------------------------------------------
// What the front end relies on beyond property names (a failure here names
// the schema to fix in the API, not in this file).

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

export type Contract = [
  // The form fields are appended to multipart/form-data as strings.
  Expect<Equal<Schemas["UploadForm"]["fields"], Record<string, string>>>,
  // The statuses the upload poll tells apart.
  Expect<Equal<Schemas["ImageStatus"], "pending" | "processing" | "ready" | "failed">>,
  // The transition the publish button sends.
  Expect<"publish" extends Schemas["StatusChange"]["action"] ? true : false>,
];

// ---------------------------------------------------------------------------
// The front end's calls.

/** The gallery list's query, as the document types `GET /v1/artworks`. */
export type GalleryQuery = NonNullable<paths["/v1/artworks"]["get"]["parameters"]["query"]>;
export type GallerySort = NonNullable<GalleryQuery["sort"]>;
/** The currencies a price may be in (the document lists them). */
export type Currency = Schemas["NewEdition"]["currency"];

/** Creates a draft artwork from its title (the slug is derived from it). */
export function createDraft(api: Api, title: string): Promise<Answer<Schemas["Artwork"]>> {
  return request(api, "post", "/v1/me/artworks", { body: { title } });
}

/** Adds an edition of prints to the artwork: its size, paper and price (minor units of `currency`). */
export function addEdition(
  api: Api,
  artworkId: string,
  edition: { size: number; paper: string; priceMinor: number; currency: Currency },
): Promise<Answer<Schemas["PrintEdition"]>> {
  return request(api, "post", "/v1/manage/artworks/{id}/editions", {
    path: { id: artworkId },
    body: {
      edition_size: edition.size,
      paper: edition.paper,
      price_minor: edition.priceMinor,
      currency: edition.currency,
    },
  });
}

/** Opens an upload slot for `file`: the pending image and the presigned form to POST the file with. */
export function requestUpload(
  api: Api,
  artworkId: string,
  file: File,
  altText: string,
): Promise<Answer<Schemas["Upload"]>> {
  return request(api, "post", "/v1/manage/artworks/{id}/images", {
    path: { id: artworkId },
    body: { file_name: file.name, content_type: file.type || null, alt_text: altText },
  });
}

/** Sends the original to storage with the slot's form: its fields first, the file last. */
export async function uploadOriginal(slot: Schemas["Upload"], file: File): Promise<void> {
  const { method, url, fields, expires_at, max_bytes } = slot.upload;
  if (file.size > max_bytes) throw new Error(`${file.name} is larger than ${max_bytes} bytes`);
  if (Date.parse(expires_at) <= Date.now()) throw new Error("the upload slot has expired");
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append("file", file);
  const response = await fetch(url, { method, body: form });
  if (!response.ok) throw new Error(`the upload of ${file.name} failed: HTTP ${response.status}`);
}

/** Reads one image: its processing status and, once processed, its renditions. */
export function readImage(api: Api, imageId: string): Promise<Answer<Schemas["ManagedImage"]>> {
  return request(api, "get", "/v1/manage/images/{id}", { path: { id: imageId } });
}

/** Polls the image until it is processed (status `ready`); a failed one throws with its reason. */
export async function waitUntilReady(
  api: Api,
  imageId: string,
  { tries = 60, intervalMs = 2000 } = {},
): Promise<Schemas["ManagedImage"]> {
  for (let i = 0; i < tries; i++) {
    const { data: image } = await readImage(api, imageId);
    if (image.status === "ready") return image;
    if (image.status === "failed") throw new Error(`processing failed: ${image.failure_reason ?? "no reason given"}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`image ${imageId} was not processed in time`);
}

/** Reads the artwork as its artist manages it; its ETag is what an update sends as `If-Match`. */
export function readArtwork(api: Api, artworkId: string): Promise<Answer<Schemas["Artwork"]>> {
  return request(api, "get", "/v1/manage/artworks/{id}", { path: { id: artworkId } });
}

/** Publishes the artwork, conditional on the ETag it was read with. */
export function publish(api: Api, artworkId: string, etag: string): Promise<Answer<Schemas["Artwork"]>> {
  return request(api, "post", "/v1/manage/artworks/{id}/status", {
    path: { id: artworkId },
    header: { "If-Match": etag },
    body: { action: "publish" },
  });
}

/** Reads a published artwork by its slug, as its public page shows it. */
export function readPublicArtwork(api: Api, slug: string): Promise<Answer<Schemas["PublicArtwork"]>> {
  return request(api, "get", "/v1/artworks/{slug}", { path: { slug } });
}

/** Lists the gallery, or searches it with `q` (`relevance`, the default with `q`, needs it). */
export function listGallery(
  api: Api,
  q?: string,
  sort: GallerySort = q ? "relevance" : "newest",
  cursor?: string,
): Promise<Answer<Schemas["GalleryPage"]>> {
  return request(api, "get", "/v1/artworks", { query: { q, sort, cursor } });
}

/** The rendition formats a `<picture>` offers, in the order a browser should prefer them. */
const FORMATS = [
  { format: "webp", type: "image/webp" },
  { format: "jpg", type: "image/jpeg" },
] as const;

/** `url width-w, …` of the image's renditions in `format`, narrowest first. */
export function srcset(image: Schemas["PublicImage"], format: string): string {
  return image.renditions
    .filter((r) => r.format === format)
    .sort((a, b) => a.width - b.width)
    .map((r) => `${r.url} ${r.width}w`)
    .join(", ");
}

/**
 * The `<picture>` of the artwork's primary image: a source per format with
 * every rendition's width, and a JPEG `<img>` fallback no larger than
 * `fallbackLongEdge`, described by the image's alt text.
 */
export function primaryPicture(
  artwork: Schemas["PublicArtwork"],
  { sizes = "(min-width: 64rem) 50vw, 100vw", fallbackLongEdge = 1600 } = {},
): HTMLPictureElement | null {
  const image = artwork.images[0];
  if (!image) return null;
  const jpegs = image.renditions
    .filter((r) => r.format === "jpg")
    .sort((a, b) => a.long_edge - b.long_edge);
  const fallback = jpegs.filter((r) => r.long_edge <= fallbackLongEdge).at(-1) ?? jpegs[0];
  if (!fallback) return null;

  const picture = document.createElement("picture");
  for (const { format, type } of FORMATS) {
    const set = srcset(image, format);
    if (!set) continue;
    const source = document.createElement("source");
    source.type = type;
    source.srcset = set;
    source.sizes = sizes;
    picture.append(source);
  }
  const img = document.createElement("img");
  img.src = fallback.url;
  img.width = fallback.width;
  img.height = fallback.height;
  // Absent only on works published before alt text was required.
  img.alt = image.alt ?? "";
  img.loading = "lazy";
  img.decoding = "async";
  picture.append(img);
  return picture;
}

/**
 * The artist's path from a new draft to its public page, as the front end
 * walks it: draft, edition, image (uploaded and processed), publish, then the
 * public page's picture.
 */
export async function draftToPublished(
  api: Api,
  work: { title: string; file: File; altText: string },
): Promise<{ slug: string; picture: HTMLPictureElement | null }> {
  const { data: draft } = await createDraft(api, work.title);
  await addEdition(api, draft.id, { size: 50, paper: "Hahnemühle Copperplate", priceMinor: 25000, currency: "EUR" });
  const { data: slot } = await requestUpload(api, draft.id, work.file, work.altText);
  await uploadOriginal(slot, work.file);
  await waitUntilReady(api, slot.image.id);
  const { etag } = await readArtwork(api, draft.id);
  if (!etag) throw new Error("the artwork came without an ETag");
  const { data: published } = await publish(api, draft.id, etag);
  const { data: page } = await readPublicArtwork({ baseUrl: api.baseUrl }, published.slug);
  return { slug: page.slug, picture: primaryPicture(page) };
}
