//! `/api/models`: the object models the server knows (built in and `--model-dir`), so clients of the API (the
//! web UI) can name objects and resources and pick value editors by type.

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json as Reply;
use lwm2m_core::model::{DataType, ModelRegistry, Models, ObjectModel, ResourceModel, Version};
use serde_json::{json, Value as Json};

use crate::error::ApiError;
use crate::query::Query;
use crate::WebApi;

/// The JSON name of a data type: `string`, `integer`, `unsigned`, `float`, `boolean`, `opaque`, `time`,
/// `objlnk`, `corelnk` or `none` (executable resources).
pub(crate) fn type_name(t: DataType) -> &'static str {
    match t {
        DataType::String => "string",
        DataType::Integer => "integer",
        DataType::UnsignedInteger => "unsigned",
        DataType::Float => "float",
        DataType::Boolean => "boolean",
        DataType::Opaque => "opaque",
        DataType::Time => "time",
        DataType::Objlnk => "objlnk",
        DataType::Corelnk => "corelnk",
        DataType::None => "none",
    }
}

fn resource_json(r: &ResourceModel) -> Json {
    json!({
        "id": r.id,
        "name": r.name,
        "operations": r.operations.to_string(),
        "multiple": r.multiple,
        "mandatory": r.mandatory,
        "type": type_name(r.data_type),
        "range": r.range,
        "units": r.units,
        "description": r.description,
    })
}

/// One object model as JSON, with the versions of it the registry holds.
fn model_json(m: &ObjectModel, versions: &[Version]) -> Json {
    let versions: Vec<String> = versions.iter().map(Version::to_string).collect();
    let resources: Vec<Json> = m.resources.values().map(resource_json).collect();
    json!({
        "id": m.id,
        "name": m.name,
        "version": m.version.to_string(),
        "versions": versions,
        "lwm2m_version": m.lwm2m_version.to_string(),
        "urn": m.urn,
        "multiple": m.multiple,
        "mandatory": m.mandatory,
        "description": m.description,
        "resources": resources,
    })
}

/// Every object's preferred model, by id.
fn list_json(registry: &ModelRegistry) -> Json {
    let models: Vec<Json> = registry
        .object_ids()
        .filter_map(|id| registry.object(id).map(|m| model_json(m, &registry.versions(id))))
        .collect();
    json!({"total": models.len(), "models": models})
}

/// `GET /api/models`: the preferred version of every known object model, resources included.
pub(crate) async fn list(State(api): State<WebApi>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    Query::parse(raw.as_deref())?.only(&[])?;
    Ok(Reply(list_json(api.server().models())).into_response())
}

/// The model of object `id` (`version`, or the preferred one).
fn one_json(registry: &ModelRegistry, id: &str, version: Option<&str>) -> Result<Json, ApiError> {
    let oid: u16 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "bad_path",
            format!("{id:?} is not an object id (0-65535); GET /api/models lists the known objects"),
        )
    })?;
    let model = match version {
        None => registry.object(oid),
        Some(v) => {
            let v: Version = v.parse().map_err(|_| {
                ApiError::bad_request("bad_query", format!("version={v} is not MAJOR.MINOR, e.g. version=1.1"))
            })?;
            registry.object_version(oid, v)
        }
    };
    match model {
        Some(m) => Ok(model_json(m, &registry.versions(oid))),
        None => {
            let known: Vec<String> = registry.versions(oid).iter().map(Version::to_string).collect();
            let reason = match (version, known.is_empty()) {
                (_, true) => format!("no model of object {oid} is loaded (GET /api/models lists them)"),
                (Some(v), false) => format!("object {oid} has no model version {v}; loaded: {}", known.join(", ")),
                (None, false) => format!("no model of object {oid}"),
            };
            Err(ApiError::not_found("unknown_model", reason))
        }
    }
}

/// `GET /api/models/{id}[?version=1.1]`.
pub(crate) async fn get_one(
    State(api): State<WebApi>,
    UrlPath(id): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref())?;
    q.only(&["version"])?;
    Ok(Reply(one_json(api.server().models(), &id, q.get("version"))?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn lists_every_object_with_names_and_resource_types() {
        let registry = ModelRegistry::builtin();
        let list = list_json(&registry);
        let models = list["models"].as_array().expect("models is an array");
        assert_eq!(list["total"], models.len());
        assert_eq!(models.len(), registry.object_ids().count());
        let device = models.iter().find(|m| m["id"] == 3).expect("object 3 is listed");
        assert_eq!(device["name"], "Device");
        assert_eq!(device["version"], "1.1", "the LwM2M 1.1.1 default version is preferred");
        assert_eq!(device["versions"], json!(["1.1", "1.2"]));
        assert_eq!(device["multiple"], false);
        assert_eq!(device["mandatory"], true);
        let res = device["resources"].as_array().expect("resources");
        let manufacturer = res.iter().find(|r| r["id"] == 0).expect("/3/x/0");
        assert_eq!(manufacturer["name"], "Manufacturer");
        assert_eq!(manufacturer["operations"], "R");
        assert_eq!(manufacturer["type"], "string");
        assert_eq!(manufacturer["multiple"], false);
        let reboot = res.iter().find(|r| r["id"] == 4).expect("/3/x/4");
        assert_eq!((&reboot["operations"], &reboot["type"]), (&json!("E"), &json!("none")));
        let errors = res.iter().find(|r| r["id"] == 11).expect("/3/x/11");
        assert_eq!(
            (&errors["multiple"], &errors["type"]),
            (&json!(true), &json!("integer"))
        );
        let temp = models.iter().find(|m| m["id"] == 3303).expect("3303");
        let value = temp["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["id"] == 5700))
            .expect("5700");
        assert_eq!(
            (&value["type"], &value["name"]),
            (&json!("float"), &json!("Sensor Value"))
        );
        let ids: Vec<u64> = models.iter().filter_map(|m| m["id"].as_u64()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by id: {ids:?}");
    }

    #[test]
    fn one_model_by_id_and_version() {
        let registry = ModelRegistry::builtin();
        let m = one_json(&registry, "3", None).unwrap();
        assert_eq!((&m["name"], &m["version"]), (&json!("Device"), &json!("1.1")));
        let m = one_json(&registry, "3", Some("1.2")).unwrap();
        assert_eq!(m["version"], "1.2");
        assert!(
            m["urn"].as_str().unwrap_or("").starts_with("urn:oma:lwm2m:oma:3"),
            "{}",
            m["urn"]
        );
        let lifetime = m["resources"].as_array().and_then(|r| r.iter().find(|r| r["id"] == 13));
        assert_eq!(lifetime.map(|r| r["type"].clone()), Some(json!("time")));

        let e = one_json(&registry, "3", Some("9.9")).unwrap_err();
        assert_eq!((e.status, e.error), (StatusCode::NOT_FOUND, "unknown_model"));
        assert!(e.reason.contains("1.1, 1.2"), "{}", e.reason);
        let e = one_json(&registry, "60000", None).unwrap_err();
        assert_eq!((e.status, e.error), (StatusCode::NOT_FOUND, "unknown_model"));
        let e = one_json(&registry, "x", None).unwrap_err();
        assert_eq!((e.status, e.error), (StatusCode::BAD_REQUEST, "bad_path"));
        let e = one_json(&registry, "3", Some("one")).unwrap_err();
        assert_eq!((e.status, e.error), (StatusCode::BAD_REQUEST, "bad_query"));
    }
}
