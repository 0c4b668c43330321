//! The routes of API v1, one file per resource, and the OpenAPI document
//! generated from them (`GET /v1/openapi.json`).
//!
//! | file | routes |
//! |---|---|
//! | `public.rs` | the gallery: `/v1/artworks`, `/v1/artists/{id}`, health, the document |
//! | `me.rs` | an artist's own profile and artworks: `/v1/me…` |
//! | `artworks.rs` | one artwork's fields, publication, delete and restore: `/v1/manage/artworks/{id}…` |
//! | `editions.rs` | editions and sales: `…/editions`, `/v1/manage/editions/{id}…` |
//! | `images.rs` | uploads, order, removal: `…/images`, `/v1/manage/images/{id}` |
//! | `admin/` | artists, tokens, the audit log, every artwork: `/v1/admin/…` |

mod admin;
mod artworks;
mod editions;
mod images;
mod me;
mod my_tokens;
mod public;

use std::sync::OnceLock;

use axum::middleware;
use axum::Router;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{Required, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::extract::Require;
use crate::http::{self, CONTENT_SHA256};
use crate::{ApiError, SharedState, TOKEN_HEADER};

type Result<T> = std::result::Result<T, ApiError>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Copper Print Gallery API",
        version = "1.1.0",
        description = "Public gallery reads, and artist and admin writes.\n\n\
            Authenticate with `x-gallery-token: <token>` (not `Authorization`, which CloudFront's origin access \
            control replaces). Every POST, PUT and PATCH must carry `x-amz-content-sha256`: the hex SHA-256 of the \
            body, of an empty body when there is none. Every update and delete must carry `If-Match` with the \
            ETag of the resource. Errors are `application/problem+json` (RFC 9457)."
    ),
    // The gallery's own origin: CloudFront serves the API under /v1.
    servers((url = "/", description = "The gallery's origin (CloudFront)")),
    // Sort is only a query parameter's type: named here so its $ref resolves.
    components(schemas(crate::error::Problem, shared::domain::Sort)),
    tags(
        (name = "gallery", description = "Public: no token"),
        (name = "artist", description = "An artist's own profile and work (admins may manage any artwork)"),
        (name = "admin", description = "Admin tokens only"),
    )
)]
struct ApiDoc;

/// Every route of v1, with its documentation.
fn api() -> OpenApiRouter<SharedState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(public::routes())
        .merge(me::routes())
        .merge(my_tokens::routes())
        .merge(artworks::routes())
        .merge(editions::routes())
        .merge(images::routes())
        .merge(admin::routes())
}

static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();

fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    Contract.modify(&mut doc);
    doc
}

/// The OpenAPI 3.1 document of the API, built from the route annotations
/// (once: `router` keeps the one it builds).
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    DOC.get_or_init(|| finish(api().into_openapi()))
}

/// The methods the document allows on `path` (for `Allow` on a 405), from the
/// same annotations the router is built from.
pub(crate) fn allowed_methods(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let fits = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s)
    };
    let (_, item) = openapi()
        .paths
        .paths
        .iter()
        .filter(|(t, _)| fits(t))
        .max_by_key(|(t, _)| t.matches('{').count() == 0)?;
    let mut methods = Vec::new();
    for (op, names) in [
        (&item.get, "GET, HEAD"),
        (&item.post, "POST"),
        (&item.put, "PUT"),
        (&item.patch, "PATCH"),
        (&item.delete, "DELETE"),
    ] {
        if op.is_some() {
            methods.push(names);
        }
    }
    Some(methods.join(", "))
}

/// The whole API. The Lambda and the local server both serve exactly this.
pub fn router(state: SharedState) -> Router {
    let (routes, doc) = api().split_for_parts();
    DOC.get_or_init(|| finish(doc));
    routes
        .fallback(|| async { ApiError::NoRoute })
        .layer(middleware::from_fn(http::representations))
        .layer(middleware::from_fn_with_state(state.clone(), http::write_limit))
        .layer(middleware::from_fn(http::body_contract))
        .layer(middleware::from_fn_with_state(state.clone(), http::deadline))
        .layer(http::cors(&state.cors_origins))
        .layer(middleware::from_fn(http::request_context))
        .with_state(state)
}

/// What the handlers leave to the document's one place: the token scheme,
/// the headers the deployed path requires, and the problems each kind of
/// operation can answer.
struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "gallery_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(TOKEN_HEADER))),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                (&mut item.get, "GET"),
                (&mut item.post, "POST"),
                (&mut item.put, "PUT"),
                (&mut item.patch, "PATCH"),
                (&mut item.delete, "DELETE"),
            ];
            for (op, method) in ops {
                if let Some(op) = op.as_mut() {
                    // Public operations say so (`security: []`), so linters and
                    // generators need not guess.
                    op.security.get_or_insert_with(Vec::new);
                    document_operation(op, method);
                    op.operation_id = Some(operation_id(method, path));
                }
            }
        }
        add_links(doc);
        name_currencies(doc);
    }
}

/// What a created resource leads to: `(operation, status, id in its body,
/// operations that take that id)`. Clients (and the stateful attack run,
/// `cargo xtask reliability`) follow these from create to read, update and
/// delete; an operation that needs `If-Match` gets the response's ETag.
const LINKS: &[(&str, &str, &str, &[&str])] = &[
    (
        "postMeArtworks",
        "201",
        "/id",
        &[
            "getManageArtworksById",
            "patchManageArtworksById",
            "postManageArtworksByIdStatus",
            "deleteManageArtworksById",
            "postManageArtworksByIdEditions",
            "getManageArtworksByIdEditions",
            "postManageArtworksByIdImages",
            "getManageArtworksByIdImages",
        ],
    ),
    (
        "postManageArtworksByIdEditions",
        "201",
        "/id",
        &[
            "getManageEditionsById",
            "patchManageEditionsById",
            "postManageEditionsByIdSales",
            "getManageEditionsByIdSales",
            "postManageEditionsByIdRetire",
        ],
    ),
    ("postManageEditionsByIdSales", "200", "/sales/0/id", &["postManageSalesByIdVoid"]),
    (
        "postManageArtworksByIdImages",
        "201",
        "/image/id",
        &["getManageImagesById", "patchManageImagesById", "deleteManageImagesById"],
    ),
    (
        "postAdminArtists",
        "201",
        "/id",
        &[
            "getAdminArtistsById",
            "patchAdminArtistsById",
            "postAdminArtistsByIdSuspension",
            "deleteAdminArtistsByIdSuspension",
        ],
    ),
    ("postAdminTokens", "201", "/token/id", &["getAdminTokensById", "deleteAdminTokensById"]),
    ("postAdminArtistsByIdErasure", "202", "/id", &["getAdminErasuresById"]),
];

fn add_links(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    use utoipa::openapi::RefOr;
    let mut conditional = std::collections::HashSet::new();
    for item in doc.paths.paths.values() {
        for op in
            [&item.get, &item.post, &item.put, &item.patch, &item.delete].into_iter().flatten()
        {
            let needs = op.parameters.iter().flatten().any(|p| p.name == "If-Match");
            if let (true, Some(id)) = (needs, &op.operation_id) {
                conditional.insert(id.clone());
            }
        }
    }
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete]
            .into_iter()
            .flatten()
        {
            let Some(id) = op.operation_id.clone() else { continue };
            for (_, status, pointer, targets) in LINKS.iter().filter(|l| l.0 == id) {
                let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) else {
                    continue;
                };
                for target in *targets {
                    let mut link = LinkBuilder::new()
                        .parameter("path.id", format!("$response.body#{pointer}"));
                    if conditional.contains(*target) {
                        link = link.parameter("header.If-Match", "$response.header.ETag");
                    }
                    let mut link = link.build();
                    // utoipa 5.5 writes the field as `operation_id`; the
                    // specification's `operationId` goes through the map
                    // it flattens into the link instead.
                    let mut named = utoipa::openapi::extensions::Extensions::default();
                    named.insert("operationId".into(), serde_json::json!(target));
                    link.extensions = Some(named);
                    response.links.insert(target.to_string(), link.into());
                }
            }
        }
    }
}

/// A stable, unique operationId from the method and the path (utoipa's default,
/// the handler's name, repeats: `show` six times), which client generators need:
/// `GET /v1/admin/artists/{id}/suspension` → `getAdminArtistsByIdSuspension`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for segment in path.split('/').filter(|s| !s.is_empty() && *s != "v1") {
        let (prefix, word) = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => ("By", param),
            None => ("", segment),
        };
        id.push_str(prefix);
        for part in word.split(['_', '-', '.']).filter(|p| !p.is_empty()) {
            let mut chars = part.chars();
            if let Some(first) = chars.next() {
                id.extend(first.to_uppercase());
                id.push_str(chars.as_str());
            }
        }
    }
    id
}

fn header(name: &str, required: bool, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(if required { Required::True } else { Required::False })
        .description(Some(description))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String),
        ))
        .build()
}

/// The currencies prices may be in (`shared::domain::CURRENCIES`).
fn currencies() -> Vec<serde_json::Value> {
    shared::domain::CURRENCIES.iter().map(|c| serde_json::json!(c)).collect()
}

/// Every `currency` field of a request or response body names the same list.
fn name_currencies(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let Some(components) = doc.components.as_mut() else { return };
    for schema in components.schemas.values_mut() {
        let RefOr::T(Schema::Object(object)) = schema else { continue };
        if let Some(RefOr::T(Schema::Object(currency))) = object.properties.get_mut("currency") {
            currency.enum_values = Some(currencies());
        }
    }
}

/// The rules the handlers enforce on shared parameters, stated in their
/// schemas, so a client (and a generated attack) knows what is refused.
fn constrain(p: &mut Parameter) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let Some(RefOr::T(Schema::Object(schema))) = p.schema.as_mut() else { return };
    match (p.name.as_str(), &p.parameter_in) {
        ("limit", ParameterIn::Query) => {
            schema.minimum = Some(1.into());
            schema.maximum = Some(PAGE_MAX.into());
        }
        // Cursors are opaque: only one the API returned is valid.
        ("cursor", ParameterIn::Query) => schema.min_length = Some(1),
        ("medium" | "q", ParameterIn::Query) => {
            schema.min_length = Some(1);
            schema.max_length = Some(200);
        }
        ("currency", ParameterIn::Query) => schema.enum_values = Some(currencies()),
        ("price_min" | "price_max", ParameterIn::Query) => schema.minimum = Some(0.into()),
        ("Idempotency-Key", ParameterIn::Header) => {
            schema.pattern = Some("^[!-~]{1,255}$".into());
        }
        _ => {}
    }
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn document_operation(op: &mut Operation, method: &str) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let params = op.parameters.get_or_insert_with(Vec::new);
    if matches!(method, "POST" | "PUT" | "PATCH") {
        params.push(header(
            CONTENT_SHA256,
            true,
            "Hex SHA-256 of the body (of an empty body when there is none); CloudFront and Lambda refuse the request without it.",
        ));
    }
    // A header is a string or absent, never null (utoipa makes `Option` nullable).
    for p in params.iter_mut().filter(|p| p.name == "Idempotency-Key") {
        *p = header(&p.name.clone(), false, p.description.as_deref().unwrap_or_default());
    }
    for p in params.iter_mut() {
        constrain(p);
    }
    let conditional = params.iter().any(|p| p.name == "If-Match");
    let queried = params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let mut add = |code: &str, text: &str| {
        op.responses.responses.entry(code.to_owned()).or_insert_with(|| problem(text).into());
    };
    add("400", "Malformed: bad syntax, a missing or wrong x-amz-content-sha256, an unknown query parameter");
    add("404", "No such resource, or not one this caller may see");
    add("405", "Method not allowed; `Allow` lists the methods");
    add("503", "Temporarily unavailable; retry after `Retry-After` seconds");
    if secured {
        add("401", "No live gallery token in x-gallery-token");
        add("403", "The token's scope may not do this");
        add("429", "Too many writes with this token; retry after `Retry-After` seconds");
    }
    if has_body {
        add("413", "The body is larger than 256 KiB");
        add("415", "The body is not application/json");
    }
    if has_body || queried {
        add("422", "Well-formed but invalid: `errors` names each field");
    }
    if conditional {
        add("412", "If-Match does not name the current representation");
        add("428", "If-Match is required");
    }
    if matches!(method, "POST" | "PATCH" | "DELETE") && secured {
        add("409", "Conflicts with the resource's state (a taken slug, a sold-out edition, a transition not allowed)");
    }
    add(
        "500",
        "A failure of the gallery's own, never of the request; `request_id` finds it in the logs",
    );
    if method == "GET" {
        op.responses.responses.entry("304".to_owned()).or_insert_with(|| {
            ResponseBuilder::new()
                .description("Not modified: If-None-Match named the current ETag")
                .header("ETag", response_header("The representation's ETag"))
                .build()
                .into()
        });
    }
    let idempotent = op.parameters.iter().flatten().any(|p| p.name == "Idempotency-Key");
    for (code, response) in op.responses.responses.iter_mut() {
        let utoipa::openapi::RefOr::T(response) = response else { continue };
        let headers = &mut response.headers;
        headers.insert(
            "x-request-id".into(),
            response_header("This request's id, as the logs name it"),
        );
        match code.as_str() {
            "200" | "201" => {
                headers.insert(
                    "ETag".into(),
                    response_header(
                        "Strong ETag of the representation's own fields; send it as If-Match",
                    ),
                );
            }
            "429" | "503" => {
                headers.insert(
                    "Retry-After".into(),
                    response_header("Seconds to wait before retrying"),
                );
            }
            _ => {}
        }
        if matches!(code.as_str(), "201" | "202") {
            headers.insert("Location".into(), response_header("Where the created resource is"));
        }
        if idempotent && code.starts_with('2') {
            headers.insert(
                "idempotent-replayed".into(),
                response_header("`true` when this is the stored answer to an earlier request with the same Idempotency-Key"),
            );
        }
    }
}

fn response_header(description: &str) -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String),
        )
        .description(Some(description))
        .build()
}

/// `If-Match` as every update documents it.
pub(crate) const IF_MATCH: &str = "The ETag of the resource, from its GET";

/// Which artworks a management route may touch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Deleted {
    /// Live artworks only: a deleted one answers 404.
    No,
    /// Deleted ones too (to show or restore them within the grace period).
    Included,
}

/// The artwork `who` may manage (its artist, or any admin), or 404 — not 403,
/// so ids of other artists' works do not leak. `lock` holds it for the write.
async fn managed(
    db: &impl deadpool_postgres::GenericClient,
    who: &shared::domain::Principal,
    id: Uuid,
    deleted: Deleted,
    lock: bool,
) -> Result<shared::domain::Artwork> {
    match shared::db::artwork_with_deleted(db, id, lock).await? {
        Some(a)
            if who.may_manage(a.artist_id)
                && (deleted == Deleted::Included || a.deleted_at.is_none()) =>
        {
            Ok(a)
        }
        _ => Err(ApiError::NotFound),
    }
}

/// Page size: `limit`, 1 to 100, default 24.
/// The largest page any list returns (`limit`; the document states it too).
const PAGE_MAX: i64 = 100;

fn page_size(limit: Option<i64>) -> Result<i64> {
    match limit.unwrap_or(24) {
        n @ 1..=PAGE_MAX => Ok(n),
        _ => Err(ApiError::invalid("limit", format!("must be between 1 and {PAGE_MAX}"))),
    }
}

/// One more row than the page is read, to know whether there is a next page.
fn split_page<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(cursor) } else { None };
    (rows, next)
}

fn cursor(raw: Option<&str>) -> Result<Option<shared::domain::Cursor>> {
    raw.map(|c| shared::domain::Cursor::decode("cursor", c))
        .transpose()
        .map_err(|e| ApiError::Invalid(vec![e]))
}

/// Admins only, for the routes under `/v1/admin`.
fn admin(who: &shared::domain::Principal) -> Result<()> {
    who.admin()
}
