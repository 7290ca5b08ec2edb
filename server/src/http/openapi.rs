//! The JSON API's OpenAPI document. Every domain registers its routes
//! through `utoipa_axum::routes!` (in its `api.rs`), so the document cannot
//! miss one.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ErrorBody;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Nubo API", description = "Nubo's HTTP API. Authenticate with `Authorization: Bearer <token>` (create tokens in the UI or with `nubo token create`). Browser sessions work too, with the `x-csrf-token` header on writes."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The API router (every domain's routes, merged by the composition
/// layer) nested under `/api/v1`, and its OpenAPI document.
pub fn document(
    api: OpenApiRouter<AppState>,
) -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api)
        .split_for_parts();
    let path = "/api/v1/openapi.json";
    doc.paths.paths.insert(
        path.to_string(),
        utoipa::openapi::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .summary(Some("This OpenAPI document"))
                .operation_id(Some("openapi"))
                .security(utoipa::openapi::security::SecurityRequirement::default())
                .response(
                    "200",
                    utoipa::openapi::Response::new("The OpenAPI 3.1 document"),
                ),
        ),
    );
    (router, doc)
}
