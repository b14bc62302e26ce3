//! `GET /api/v1/openapi.json`: an OpenAPI 3.0 document built from the route
//! table below (the same table the tests check against the router).

use axum::response::Response;
use serde_json::{json, Map, Value};

/// One documented operation.
pub(crate) struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// `(name, in, required, description, schema)`; the schema is JSON
    /// (`STR`, `INT`, … below) so that a client — or schemathesis — knows
    /// what is valid.
    pub params: &'static [Param],
    /// Schema of the request body (a name under components).
    pub body: Option<&'static str>,
    /// Schema of the 200 answer.
    pub response: &'static str,
    pub auth: bool,
}

type Param = (&'static str, &'static str, bool, &'static str, &'static str);

/// A code of the site file (estate, building, unit, device…).
const CODE: &str = r#"{"type":"string","pattern":"^[A-Za-z0-9_-]{1,64}$"}"#;
const OBJ_ID: &str =
    r#"{"type":"integer","format":"int64","minimum":1,"maximum":9223372036854775807}"#;
const PERSON_ID: &str = r#"{"type":"string","minLength":1,"maxLength":64}"#;
const PAGE_LIMIT: &str = r#"{"type":"integer","minimum":1,"maximum":1000}"#;
const PAGE_OFFSET: &str = r#"{"type":"integer","minimum":0,"maximum":1000000000}"#;

const ID: Param = ("id", "path", true, "object id", OBJ_ID);
const LIMIT: Param = ("limit", "query", false, "1..1000, default 100", PAGE_LIMIT);
const OFFSET: Param = (
    "offset",
    "query",
    false,
    "rows to skip (next_offset of the previous page)",
    PAGE_OFFSET,
);

const IF_MATCH: Param = (
    "If-Match",
    "header",
    true,
    "the ETag of the object as read",
    r#"{"type":"string","pattern":"^(W/)?\"[0-9]{1,18}\"$"}"#,
);
const REASON: Param = (
    "reason",
    "query",
    true,
    "why (1 to 500 characters; audited)",
    r#"{"type":"string","minLength":1,"maxLength":500,"pattern":"\\S"}"#,
);
const KIND: Param = (
    "kind",
    "path",
    true,
    "credential kind",
    r#"{"type":"string","enum":["card","face","qr","pin"]}"#,
);
const CRED_ID: Param = ("id", "path", true, "credential id", PERSON_ID);

pub(crate) const OPS: &[Op] = &[
    Op { method: "post", path: "/auth/login", summary: "Log in; returns a bearer token. Attempts count before the password is checked: 429 once a user, a client address or the server is over its limit of failures, or too many checks run at once", params: &[], body: Some("Login"), response: "Token", auth: false },
    Op { method: "post", path: "/auth/logout", summary: "End the caller's session (204)", params: &[], body: None, response: "NoContent", auth: true },
    Op { method: "post", path: "/auth/revoke", summary: "Administrators: end every session of a user (their live streams end too)", params: &[], body: Some("Revoke"), response: "Revoked", auth: true },
    Op { method: "get", path: "/alerts", summary: "Alerts in the caller's scope, newest first; the answer carries an ETag, and If-None-Match with it answers 304 Not Modified while no alert changed", params: &[
        ("If-None-Match", "header", false, "ETag of a page received earlier (a list of tags is fine)", r#"{"type":"string"}"#),
        ("status", "query", false, "alert status", "STATUS"),
        ("code", "query", false, "alert code (DESIGN §5)", "CODE_ENUM"),
        ("estate", "query", false, "estate code", CODE),
        ("since", "query", false, "RFC 3339: updated at or after", r#"{"type":"string","format":"date-time"}"#),
        ("before", "query", false, "page: alerts with id below this (next_before of the previous page)", OBJ_ID),
        ("limit", "query", false, "1..500, default 100", r#"{"type":"integer","minimum":1,"maximum":500}"#),
    ], body: None, response: "AlertPage", auth: true },
    Op { method: "get", path: "/alerts/stream", summary: "Server-Sent Events: one `alert` event per alert opened or updated; id = feed sequence; Last-Event-ID resumes", params: &[("Last-Event-ID", "header", false, "resume after this sequence", r#"{"type":"integer","minimum":0}"#)], body: None, response: "EventStream", auth: true },
    Op { method: "get", path: "/alerts/{id}", summary: "One alert with evidence, transitions and notices", params: &[ID], body: None, response: "AlertDetail", auth: true },
    Op { method: "post", path: "/alerts/{id}/ack", summary: "Workflow: acknowledge (operators, supervisors, administrators)", params: &[ID], body: Some("AckBody"), response: "Alert", auth: true },
    Op { method: "post", path: "/alerts/{id}/dispatch", summary: "Workflow: dispatch to a grid manager; creates a notice. The assignee must be field staff of the building's grid (400 otherwise)", params: &[ID], body: Some("DispatchBody"), response: "Alert", auth: true },
    Op { method: "post", path: "/alerts/{id}/resolve", summary: "Workflow: resolve with an outcome", params: &[ID], body: Some("ResolveBody"), response: "Alert", auth: true },
    Op { method: "post", path: "/alerts/{id}/dismiss", summary: "Workflow: dismiss with a reason (starts the quiet period)", params: &[ID], body: Some("DismissBody"), response: "Alert", auth: true },
    Op { method: "get", path: "/notices", summary: "Field notices in scope (field staff: their grids)", params: &[("status", "query", false, "open | all (default)", r#"{"type":"string","enum":["open","all"]}"#), LIMIT, OFFSET], body: None, response: "NoticeList", auth: true },
    Op { method: "post", path: "/notices/{id}/photos", summary: "Add a photo of the visit (body: JPEG or PNG bytes, at most 8 MiB, 6 per notice) while the notice is open; whoever may record the result may add photos (audited)", params: &[ID], body: Some("Photo"), response: "VisitPhotoAdded", auth: true },
    Op { method: "get", path: "/notices/{id}/photos/{photo}", summary: "One photo of the visit (audited)", params: &[ID, ("photo", "path", true, "photo id", OBJ_ID)], body: None, response: "Jpeg", auth: true },
    Op { method: "post", path: "/notices/{id}/result", summary: "Record a visit's outcome (the assignee, or a supervisor); resolves the alert", params: &[ID], body: Some("NoticeResult"), response: "NoticeResultAnswer", auth: true },
    Op { method: "get", path: "/reports/access", summary: "24-hour access report of an estate for a local date (JSON; Accept: text/csv or format=csv gives CSV with BOM; format=html a printable page)", params: &[
        ("estate", "query", true, "estate code", CODE),
        ("date", "query", true, "YYYY-MM-DD in the estate's time zone", r#"{"type":"string","format":"date"}"#),
        ("format", "query", false, "json | csv | html", r#"{"type":"string","enum":["json","csv","html"]}"#),
    ], body: None, response: "AccessReport", auth: true },
    Op { method: "get", path: "/devices", summary: "Registered devices with last seen time and status (paged: next_offset when the page is full)", params: &[LIMIT, OFFSET], body: None, response: "DeviceList", auth: true },
    Op { method: "get", path: "/estates", summary: "Estates in scope", params: &[], body: None, response: "EstateList", auth: true },
    Op { method: "get", path: "/units", summary: "Units in scope", params: &[("estate", "query", false, "estate code", CODE), ("building", "query", false, "building code", CODE), LIMIT, OFFSET], body: None, response: "UnitList", auth: true },
    Op { method: "get", path: "/units/activity", summary: "Units in scope with their registered occupants today and each one's last activity (last credited passage, last recognised sighting): where vacancy and sublet start. Counted in the audit", params: &[("estate", "query", false, "estate code", CODE), ("building", "query", false, "building code", CODE), LIMIT, OFFSET], body: None, response: "UnitActivityList", auth: true },
    Op { method: "get", path: "/persons", summary: "Ledger rows in scope (ID numbers and phones masked unless admin; audited)", params: &[
        ("estate", "query", false, "estate code", CODE), ("building", "query", false, "building code", CODE), ("unit", "query", false, "unit number", CODE),
        LIMIT, OFFSET,
    ], body: None, response: "PersonList", auth: true },
    Op { method: "get", path: "/persons/{id}", summary: "One person's ledger rows and credentials (audited)", params: &[("id", "path", true, "person id", PERSON_ID)], body: None, response: "PersonDetail", auth: true },
    Op { method: "post", path: "/persons/{id}/faces", summary: "Enrol a face photo (body: JPEG or PNG bytes; 400 when it holds no single usable face); 501 when the server has no enroller", params: &[("id", "path", true, "person id", PERSON_ID)], body: Some("Photo"), response: "Enrolled", auth: true },
    Op { method: "get", path: "/credentials", summary: "Credentials of persons in scope (ids masked unless admin)", params: &[("person", "query", false, "person id", PERSON_ID), LIMIT, OFFSET], body: None, response: "CredentialList", auth: true },
    Op { method: "get", path: "/snapshots/{key}", summary: "A best-face snapshot cited by an alert in the caller's scope (image/jpeg; audited; 404 once retention deleted it)", params: &[("key", "path", true, "snapshot key (from the evidence URL)", r#"{"type":"string","pattern":"^[A-Za-z0-9._-]{1,200}$"}"#)], body: None, response: "Jpeg", auth: true },
    Op { method: "post", path: "/persons/{id}/consent", summary: "Administrators: record the person's consent to face recognition; withdrawn, their templates, enrolled photo and recognised sightings' snapshots are deleted (audited); their credentials keep working", params: &[("id", "path", true, "person id", PERSON_ID)], body: Some("ConsentBody"), response: "ConsentAnswer", auth: true },
    Op { method: "get", path: "/persons/{id}/photo", summary: "The photo the person's face was enrolled from (audited)", params: &[("id", "path", true, "person id", PERSON_ID)], body: None, response: "Jpeg", auth: true },
    Op { method: "post", path: "/persons", summary: "Administrators: register a person in a unit of the caller's scope from lease_start (a household moving in, a member joining); 201 with the registrations and ETag; 409 when registered elsewhere today or the household lives in another unit", params: &[], body: Some("RegisterBody"), response: "PersonRecords", auth: true },
    Op { method: "patch", path: "/persons/{id}", summary: "Change the current registration's fields (administrators; supervisors lives_alone only). If-Match with the person's ETag is required (428 without, 412 when stale); audited before → after", params: &[("id", "path", true, "person id", PERSON_ID), IF_MATCH], body: Some("PersonPatch"), response: "PersonRecords", auth: true },
    Op { method: "delete", path: "/persons/{id}", summary: "Administrators: erase a person (PIPL): registrations, credentials, templates, photo, snapshots, consent, watch-list entry; the deletion stays in their history. If-Match required", params: &[("id", "path", true, "person id", PERSON_ID), IF_MATCH, REASON], body: None, response: "PersonDeleted", auth: true },
    Op { method: "post", path: "/persons/{id}/move-out", summary: "Administrators: end the current registration on lease_end (first day away); the record stays in the unit's history; active credentials revoked unless revoke_credentials is false. If-Match required", params: &[("id", "path", true, "person id", PERSON_ID), IF_MATCH], body: Some("MoveOutBody"), response: "PersonRecords", auth: true },
    Op { method: "get", path: "/persons/{id}/history", summary: "Administrators, supervisors: registry writes, consent and deletion concerning the person, newest first", params: &[("id", "path", true, "person id", PERSON_ID), LIMIT], body: None, response: "PersonHistory", auth: true },
    Op { method: "post", path: "/credentials", summary: "Administrators: issue a credential to a person registered in scope today; 201 with ETag; 409 when it exists", params: &[], body: Some("IssueBody"), response: "CredentialRecord", auth: true },
    Op { method: "get", path: "/credentials/{kind}/{id}", summary: "Administrators, supervisors: one credential with its status and ETag", params: &[KIND, CRED_ID], body: None, response: "CredentialRecord", auth: true },
    Op { method: "post", path: "/credentials/{kind}/{id}/status", summary: "Record a credential lost, suspended, revoked or active again (supervisors: lost or suspended only). If-Match required. A blocked credential used at a gate is a blocked_credential_used alert", params: &[KIND, CRED_ID, IF_MATCH], body: Some("StatusBody"), response: "CredentialRecord", auth: true },
    Op { method: "get", path: "/watchlist", summary: "The watch list (administrators, supervisors, operators; counted in the audit)", params: &[], body: None, response: "WatchList", auth: true },
    Op { method: "post", path: "/watchlist", summary: "Administrators of every estate: add a person to the watch list with a reason and an optional last day; 201 with ETag; 409 when listed", params: &[], body: Some("WatchBody"), response: "WatchEntry", auth: true },
    Op { method: "get", path: "/watchlist/{person}", summary: "One watch-list entry with its ETag", params: &[("person", "path", true, "person id", PERSON_ID)], body: None, response: "WatchEntry", auth: true },
    Op { method: "delete", path: "/watchlist/{person}", summary: "Administrators of every estate: take a person off the watch list (If-Match and a reason required)", params: &[("person", "path", true, "person id", PERSON_ID), IF_MATCH, REASON], body: None, response: "NoContent", auth: true },
    Op { method: "post", path: "/ledger/dry-run", summary: "Administrators: what importing this ledger (body: CSV or XLSX with the importer's columns) would change among the caller's estates — units and rows added, changed, moved out, kept — or every problem located by line and column; nothing is written (audited)", params: &[], body: Some("Ledger"), response: "LedgerDryRun", auth: true },
    Op { method: "get", path: "/users", summary: "Administrators: the users they manage (an estate's administrator: users of their estates only)", params: &[], body: None, response: "UserList", auth: true },
    Op { method: "post", path: "/users", summary: "Administrators: create a user with a role and a scope within their own (field staff: grids ESTATE:GRID); 201 with ETag; 409 when the name is taken (audited)", params: &[], body: Some("UserBody"), response: "UserRecord", auth: true },
    Op { method: "get", path: "/users/{name}", summary: "Administrators: one user with its ETag", params: &[("name", "path", true, "user name", PERSON_ID)], body: None, response: "UserRecord", auth: true },
    Op { method: "patch", path: "/users/{name}", summary: "Administrators: change role, scope, grids or password (If-Match required; a new password ends the user's sessions; audited)", params: &[("name", "path", true, "user name", PERSON_ID), IF_MATCH], body: Some("UserBody"), response: "UserRecord", auth: true },
    Op { method: "delete", path: "/users/{name}", summary: "Administrators: delete a user; their sessions end (If-Match required; audited)", params: &[("name", "path", true, "user name", PERSON_ID), IF_MATCH], body: None, response: "NoContent", auth: true },
    Op { method: "get", path: "/estates/{code}/rules", summary: "Administrators, supervisors: the estate's rule thresholds (the site's [rules] with what administrators set over them), the overrides and the ETag to change them (\"0\" while none are set)", params: &[("code", "path", true, "estate code", CODE)], body: None, response: "EstateRules", auth: true },
    Op { method: "put", path: "/estates/{code}/rules", summary: "Administrators of the estate: set threshold overrides (a JSON object of threshold → value; {} goes back to the site's); checked (400 naming the threshold), If-Match required, audited; edges and the analyzer apply them at their next registry reload", params: &[("code", "path", true, "estate code", CODE), IF_MATCH], body: Some("RuleOverrides"), response: "EstateRules", auth: true },
    Op { method: "post", path: "/entrances", summary: "Administrators of the estate: add an estate gate or a building door (201; 409 when the code is taken; audited)", params: &[], body: Some("EntranceBody"), response: "Object", auth: true },
    Op { method: "post", path: "/devices", summary: "Administrators of the estate: add a reader, scanner or camera at an entrance (201 with ETag; readers and scanners are accepted by the running edge at its next registry reload; a camera's stream starts at the edge's next start; audited)", params: &[], body: Some("DeviceBody"), response: "Object", auth: true },
    Op { method: "get", path: "/devices/{estate}/{id}", summary: "Administrators: a device's ETag", params: &[("estate", "path", true, "estate code", CODE), ("id", "path", true, "device id", CODE)], body: None, response: "Object", auth: true },
    Op { method: "delete", path: "/devices/{estate}/{id}", summary: "Administrators of the estate: decommission a device (If-Match required; its messages become dead letters at the edge's next reload; audited)", params: &[("estate", "path", true, "estate code", CODE), ("id", "path", true, "device id", CODE), IF_MATCH], body: None, response: "NoContent", auth: true },
    Op { method: "post", path: "/qr/passes", summary: "Issue a signed QR pass for a unit in scope (visitor: operators, supervisors, administrators; resident: administrators); 201 with the code, the PNG's URL and ETag; 501 when the server has no signing key (audited)", params: &[], body: Some("PassBody"), response: "Pass", auth: true },
    Op { method: "get", path: "/qr/passes/{id}", summary: "One pass issued through the API, with its ETag", params: &[("id", "path", true, "pass id", PERSON_ID)], body: None, response: "Pass", auth: true },
    Op { method: "get", path: "/qr/passes/{id}/png", summary: "The pass as a QR image (image/png)", params: &[("id", "path", true, "pass id", PERSON_ID)], body: None, response: "Png", auth: true },
    Op { method: "post", path: "/qr/passes/{id}/revoke", summary: "Revoke a pass (If-Match required; operators only their own); the edges refuse it after their next registry reload (audited)", params: &[("id", "path", true, "pass id", PERSON_ID), IF_MATCH], body: None, response: "Pass", auth: true },
    Op { method: "get", path: "/openapi.json", summary: "This document", params: &[], body: None, response: "Object", auth: false },
];

/// An object schema; a property that is not required may also be `null`
/// (the API writes absent values as `null`).
fn obj(props: &[(&str, Value)], required: &[&str]) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        let mut v = v.clone();
        if !required.contains(k) && v.get("type").is_some() {
            v["nullable"] = json!(true);
        }
        p.insert((*k).to_owned(), v);
    }
    json!({"type": "object", "properties": p, "required": required})
}

/// A request body that refuses properties it does not name (the server's
/// `deny_unknown_fields`).
fn closed(mut v: Value) -> Value {
    v["additionalProperties"] = json!(false);
    v
}

/// Free text a person typed: no control characters.
fn text(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": "^[^\\u0000-\\u001f\\u007f]*\\S[^\\u0000-\\u001f\\u007f]*$"})
}

fn s() -> Value {
    json!({"type": "string"})
}
fn i() -> Value {
    json!({"type": "integer", "format": "int64"})
}
fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}
fn arr(v: Value) -> Value {
    json!({"type": "array", "items": v})
}
fn t() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// The alert codes and statuses, for enums.
fn alert_enums() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        anju_core::AlertCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect(),
        anju_core::AlertStatus::ALL
            .iter()
            .map(|c| c.as_str())
            .collect(),
    )
}

fn schemas() -> Value {
    let mut v = base_schemas();
    if let (Some(o), Value::Object(extra)) = (v.as_object_mut(), admin_schemas()) {
        o.extend(extra);
    }
    v
}

/// Schemas of the registry writes (issue 15).
fn admin_schemas() -> Value {
    json!({
        "RegisterBody": closed(obj(&[
            ("person_id", text(64)),
            ("estate", json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})),
            ("building", json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})),
            ("unit", text(64)),
            ("household", text(64)),
            ("name", text(100)),
            ("role", json!({"type": "string", "enum": ["tenant", "member", "cohabitant"]})),
            ("id_number", json!({"type": "string", "pattern": "^[0-9]{17}[0-9Xx]$", "description": "GB 11643, 18 characters with a valid check digit"})),
            ("phone", json!({"type": "string", "pattern": "^[0-9+-]{0,32}$"})),
            ("birth_year", json!({"type": "integer", "minimum": 1900, "maximum": 2100})),
            ("lives_alone", json!({"type": "boolean"})),
            ("lease_start", json!({"type": "string", "format": "date"})),
        ], &["person_id", "estate", "building", "unit", "household", "name", "role", "id_number", "lease_start"])),
        "PersonPatch": {"type": "object", "additionalProperties": false, "minProperties": 1, "description": "null or absent: unchanged (birth_year: null clears it)", "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^\\u0000-\\u001f\\u007f]*\\S[^\\u0000-\\u001f\\u007f]*$", "nullable": true},
            "id_number": {"type": "string", "pattern": "^[0-9]{17}[0-9Xx]$", "nullable": true},
            "phone": {"type": "string", "pattern": "^[0-9+-]{0,32}$", "nullable": true},
            "birth_year": {"type": "integer", "minimum": 1900, "maximum": 2100, "nullable": true},
            "lives_alone": {"type": "boolean", "nullable": true},
            "role": {"type": "string", "enum": ["tenant", "member", "cohabitant"], "nullable": true},
        }},
        "MoveOutBody": closed(obj(&[("lease_end", json!({"type": "string", "format": "date"})), ("revoke_credentials", json!({"type": "boolean"}))], &["lease_end"])),
        "PersonRecords": obj(&[("id", s()), ("records", arr(r("Person")))], &["id", "records"]),
        "PersonDeleted": obj(&[("person", s()), ("deleted", obj(&[("registrations", i()), ("credentials", i()), ("templates", i()), ("photo", json!({"type": "boolean"})), ("snapshots", i()), ("watchlist", json!({"type": "boolean"}))], &[]))], &["person", "deleted"]),
        "PersonHistory": obj(&[("person", s()), ("history", arr(obj(&[("at", t()), ("by", s()), ("action", s()), ("object", s()), ("detail", json!({}))], &["at", "by", "action", "object"])))], &["person", "history"]),
        "IssueBody": closed(obj(&[
            ("kind", json!({"type": "string", "enum": ["card", "face", "qr", "pin"]})),
            ("id", text(64)),
            ("person", text(64)),
            ("valid_from", json!({"type": "string", "format": "date"})),
            ("valid_to", json!({"type": "string", "format": "date"})),
            ("note", json!({"type": "string", "maxLength": 500})),
        ], &["kind", "id", "person"])),
        "StatusBody": closed(obj(&[("status", json!({"type": "string", "enum": ["active", "suspended", "revoked", "lost"]})), ("note", json!({"type": "string", "maxLength": 500}))], &["status"])),
        "CredentialRecord": obj(&[("kind", s()), ("id", s()), ("person", s()), ("valid_from", s()), ("valid_to", s()), ("status", json!({"type": "string", "enum": ["active", "suspended", "revoked", "lost"]})), ("status_at", t()), ("status_by", s()), ("status_note", s()), ("version", i())], &["kind", "id", "person", "status", "version"]),
        "WatchBody": closed(obj(&[
            ("person", text(64)),
            ("name", text(100)),
            ("reason", text(500)),
            ("expires", json!({"type": "string", "format": "date"})),
        ], &["person", "name", "reason"])),
        "WatchEntry": obj(&[("person", s()), ("name", s()), ("reason", s()), ("expires", s()), ("added_by", s()), ("added_at", t()), ("version", i())], &["person", "name", "reason", "version"]),
        "Ledger": {"type": "string", "format": "binary"},
        "LedgerDryRun": obj(&[("dry_run", json!({"type": "boolean"})), ("valid", json!({"type": "boolean"})), ("would_change", json!({"type": "boolean"})), ("errors", arr(obj(&[("file", s()), ("line", i()), ("column", i()), ("field", s()), ("message", s())], &["file", "message"]))), ("units", json!({"type": "object"})), ("persons", json!({"type": "object"})), ("moved_out", arr(json!({"type": "object"})))], &["dry_run", "valid"]),
        "UserBody": closed(obj(&[
            ("name", text(64)),
            ("role", json!({"type": "string", "enum": ["admin", "supervisor", "operator", "field_staff"]})),
            ("all_estates", json!({"type": "boolean"})),
            ("estates", arr(json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}))),
            ("grids", arr(json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$", "description": "ESTATE:GRID"}))),
            ("password", json!({"type": "string", "minLength": 8, "maxLength": 1024})),
        ], &[])),
        "UserRecord": obj(&[("name", s()), ("role", s()), ("all_estates", json!({"type": "boolean"})), ("estates", arr(s())), ("grids", arr(arr(s()))), ("version", i())], &["name", "role", "version"]),
        "UserList": obj(&[("users", arr(r("UserRecord")))], &["users"]),
        "RuleOverrides": {"type": "object", "description": "threshold → value (see GET's thresholds for the names)", "additionalProperties": {"type": "integer", "minimum": 0}},
        "EstateRules": obj(&[("estate", s()), ("thresholds", json!({"type": "object"})), ("site", json!({"type": "object"})), ("overrides", json!({"type": "object"})), ("updated_by", s()), ("updated_at", t())], &["estate", "thresholds"]),
        "EntranceBody": closed(obj(&[("estate", json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})), ("code", json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})), ("kind", json!({"type": "string", "enum": ["estate_gate", "building_door"]})), ("building", json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}))], &["estate", "code", "kind"])),
        "DeviceBody": closed(obj(&[("estate", json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})), ("id", json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})), ("kind", json!({"type": "string", "enum": ["reader", "scanner", "camera"]})), ("entrance", json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})), ("url", json!({"type": "string", "pattern": "^rtsps?://"})), ("faces", json!({"type": "string", "enum": ["in", "out", "both"]}))], &["estate", "id", "kind", "entrance"])),
        "PassBody": closed(obj(&[("unit", json!({"type": "string", "description": "ESTATE/BUILDING/UNIT"})), ("kind", json!({"type": "string", "enum": ["visitor", "resident"]})), ("valid_from", t()), ("valid_to", t()), ("single_use", json!({"type": "boolean"}))], &["unit", "kind", "valid_to"])),
        "Pass": obj(&[("id", s()), ("estate", s()), ("unit", s()), ("kind", s()), ("valid_from", t()), ("valid_to", t()), ("single_use", json!({"type": "boolean"})), ("code", s()), ("png", s()), ("revoked", json!({"type": "boolean"})), ("issued_by", s()), ("issued_at", t()), ("revoked_by", s()), ("revoked_at", t()), ("version", i())], &["id", "unit", "kind", "code", "version"]),
        "WatchList": obj(&[("watchlist", arr(r("WatchEntry")))], &["watchlist"]),
    })
}

fn base_schemas() -> Value {
    let (codes, statuses) = alert_enums();
    json!({
        "Error": obj(&[("error", obj(&[("code", s()), ("message", s())], &["code", "message"]))], &["error"]),
        "Login": obj(&[
            ("username", json!({"type": "string", "minLength": 1, "maxLength": 64})),
            ("password", json!({"type": "string", "minLength": 1, "maxLength": 1024})),
        ], &["username", "password"]),
        "Photo": {"type": "string", "format": "binary"},
        "AckBody": obj(&[("reason", s())], &[]),
        "DispatchBody": obj(&[("reason", s()), ("assignee", json!({"type": "string", "description": "user name of a field-staff user of the building's grid"})), ("due", t())], &[]),
        "ResolveBody": obj(&[("reason", s()), ("outcome", json!({"type": "string", "enum": ["confirmed", "false_alarm", "no_action"]}))], &["outcome"]),
        "DismissBody": obj(&[("reason", json!({"type": "string", "minLength": 1, "pattern": "\\S"}))], &["reason"]),
        "Token": obj(&[("token", s()), ("expires_in", i())], &["token"]),
        "Revoke": obj(&[("username", s())], &["username"]),
        "Revoked": obj(&[("revoked", i())], &["revoked"]),
        "Evidence": obj(&[("ts", t()), ("kind", s()), ("event_id", s()), ("device", s()), ("person", s()), ("stranger", s()), ("credential", s()), ("snapshot", s()), ("note", s())], &["ts", "kind"]),
        "Alert": obj(&[
            ("id", i()), ("code", json!({"type": "string", "enum": codes})),
            ("severity", json!({"type": "string", "enum": ["low", "medium", "high", "critical"]})),
            ("status", json!({"type": "string", "enum": statuses})),
            ("estate", s()), ("building", s()), ("unit", s()),
            ("subject", json!({"type": "object", "description": "exactly one of person, stranger, device, credential, unit", "additionalProperties": {"type": "string"}})),
            ("opened_at", t()), ("updated_at", t()), ("evidence", arr(r("Evidence"))),
            ("title_zh", s()), ("title_en", s()),
            ("outcome", json!({"type": "string", "enum": ["confirmed", "false_alarm", "no_action"]})), ("reason", s()),
        ], &["id", "code", "severity", "status", "estate", "subject", "opened_at", "updated_at", "evidence", "title_zh", "title_en"]),
        "AlertPage": obj(&[("alerts", arr(r("Alert"))), ("next_before", i())], &["alerts"]),
        "Transition": obj(&[("alert_id", i()), ("from", s()), ("to", s()), ("by", s()), ("at", t()), ("reason", s())], &["alert_id", "from", "to", "by", "at"]),
        "Notice": obj(&[("id", i()), ("alert_id", i()), ("estate", s()), ("building", s()), ("grid", s()), ("assignee", s()), ("due_at", t()), ("status", json!({"type": "string", "enum": ["open", "done"]})), ("result", s()), ("result_text", s()), ("created_at", t()), ("closed_at", t()), ("photos", arr(s()))], &["id", "alert_id", "estate", "due_at", "status", "created_at"]),
        "ConsentBody": obj(&[("face", json!({"type": "boolean"})), ("note", json!({"type": "string", "maxLength": 500}))], &["face"]),
        "ConsentAnswer": obj(&[("person", s()), ("face", json!({"type": "boolean"})), ("templates_deleted", i()), ("photo_deleted", json!({"type": "boolean"})), ("snapshots_deleted", i())], &["person", "face"]),
        "VisitPhotoAdded": obj(&[("id", i()), ("url", s())], &["id", "url"]),
        "UnitActivityList": obj(&[("units", arr(obj(&[
            ("estate", s()), ("building", s()), ("unit", s()), ("area_m2", json!({"type": "number"})),
            ("occupants", arr(obj(&[("person", s()), ("name", s()), ("role", s()), ("lives_alone", json!({"type": "boolean"})), ("last_access", t()), ("last_sighting", t())], &["person", "name", "role", "lives_alone"]))),
            ("last_activity", t()),
        ], &["estate", "building", "unit", "occupants"]))), ("next_offset", i())], &["units"]),
        "AlertDetail": {"allOf": [r("Alert"), obj(&[("transitions", arr(r("Transition"))), ("notices", arr(r("Notice"))), ("snapshots", arr(s()))], &["transitions", "notices", "snapshots"])]},
        "AlertAction": obj(&[("reason", s()), ("outcome", json!({"type": "string", "enum": ["confirmed", "false_alarm", "no_action"]})), ("assignee", s()), ("due", t())], &[]),
        "NoticeList": obj(&[("notices", arr(r("Notice"))), ("next_offset", i())], &["notices"]),
        "NoticeResult": obj(&[("outcome", json!({"type": "string", "enum": ["confirmed", "false_alarm", "no_action"]})), ("text", s())], &["outcome"]),
        "NoticeResultAnswer": obj(&[("notice", r("Notice")), ("alert", r("Alert"))], &["notice"]),
        "AccessReport": obj(&[
            ("estate", s()), ("date", s()), ("timezone", s()), ("from", t()), ("to", t()), ("events", i()),
            ("totals", obj(&[("access", i()), ("granted", i()), ("denied", i())], &[])),
            ("traffic", arr(obj(&[("entrance", s()), ("hour", i()), ("direction", s()), ("granted", i()), ("denied", i())], &[]))),
            ("by_hour", arr(obj(&[("hour", i()), ("label", s()), ("granted", i()), ("denied", i()), ("in", i()), ("out", i())], &[]))),
            ("by_entrance", arr(obj(&[("entrance", s()), ("granted", i()), ("denied", i()), ("in", i()), ("out", i())], &[]))),
            ("credentials", arr(obj(&[("kind", s()), ("granted", i()), ("denied", i())], &[]))),
            ("sightings", obj(&[("resident_sightings", i()), ("residents", i()), ("visitor_sightings", i()), ("visitors", i()), ("unknown_sightings", i()), ("unknown", i())], &[])),
            ("alerts", arr(obj(&[("code", s()), ("opened", i()), ("resolved", i()), ("dismissed", i())], &[]))),
            ("devices", arr(obj(&[("device", s()), ("kind", s()), ("entrance", s()), ("known_ms", i()), ("online_ms", i()), ("uptime", json!({"type": "number", "nullable": true})), ("outages", i())], &[]))),
        ], &["estate", "date", "timezone", "events", "traffic", "credentials", "sightings", "alerts", "devices"]),
        "DeviceList": obj(&[("devices", arr(obj(&[("estate", s()), ("id", s()), ("kind", s()), ("entrance", s()), ("url", s()), ("last_seen", t()), ("online", json!({"type": "boolean"})), ("seconds_since_seen", i())], &["estate", "id", "kind", "entrance"]))), ("next_offset", i())], &["devices"]),
        "EstateList": obj(&[("estates", arr(obj(&[("code", s()), ("name", s()), ("office", s())], &["code", "name"])))], &["estates"]),
        "UnitList": obj(&[("units", arr(obj(&[("key", obj(&[("estate", s()), ("building", s()), ("unit", s())], &[])), ("area_m2", json!({"type": "number"}))], &["key"]))), ("next_offset", i())], &["units"]),
        "Person": obj(&[("id", s()), ("unit", obj(&[("estate", s()), ("building", s()), ("unit", s())], &[])), ("household", s()), ("name", s()), ("role", s()), ("id_number", s()), ("phone", s()), ("birth_year", i()), ("lives_alone", json!({"type": "boolean"})), ("lease_start", s()), ("lease_end", s())], &["id", "unit", "name"]),
        "PersonList": obj(&[("persons", arr(r("Person")))], &["persons"]),
        "Credential": obj(&[("kind", s()), ("id", s()), ("person", s()), ("valid_from", s()), ("valid_to", s()), ("status", json!({"type": "string", "enum": ["active", "suspended", "revoked", "lost"]}))], &["kind", "id", "person"]),
        "CredentialList": obj(&[("credentials", arr(r("Credential"))), ("next_offset", i())], &["credentials"]),
        "PersonDetail": obj(&[("id", s()), ("records", arr(r("Person"))), ("credentials", arr(r("Credential")))], &["id", "records", "credentials"]),
        "Enrolled": obj(&[("template_id", i()), ("model", s())], &["template_id"]),
        "EventStream": {"type": "string", "description": "text/event-stream"},
        "Object": {"type": "object"},
    })
}

/// The document.
pub(crate) fn spec() -> Value {
    let (codes, statuses) = alert_enums();
    let mut paths = Map::new();
    for op in OPS {
        let params: Vec<Value> = op
            .params
            .iter()
            .map(|(n, loc, req, d, schema)| {
                let schema = match *schema {
                    "STATUS" => json!({"type": "string", "enum": statuses}),
                    "CODE_ENUM" => json!({"type": "string", "enum": codes}),
                    other => serde_json::from_str(other).unwrap_or_else(|_| s()),
                };
                json!({"name": n, "in": loc, "required": req, "description": d, "schema": schema})
            })
            .collect();
        let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": r("Error")}}});
        let mut o = json!({
            "summary": op.summary,
            "operationId": format!("{}_{}", op.method, op.path.trim_matches('/').replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "responses": {
                "400": err("invalid input"),
                "401": err("not logged in"),
                "403": err("role not allowed"),
                "404": err("not found or outside the caller's scope"),
                "409": err("the object changed meanwhile (a workflow step lost its compare-and-set)"),
                "429": err("too many attempts; see Retry-After"),
                "503": err("unavailable (store down, too many live streams)"),
            }
        });
        if op.response == "NoContent" {
            o["responses"]["204"] = json!({"description": "done"});
        } else if op.response == "Png" {
            o["responses"]["200"] = json!({"description": "the image", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}});
        } else if op.response == "Jpeg" {
            o["responses"]["200"] = json!({"description": "the image", "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            }});
        } else {
            o["responses"]["200"] = json!({"description": "OK", "content": {"application/json": {"schema": r(op.response)}}});
        }
        if op.path == "/reports/access" {
            o["responses"]["200"]["content"]["text/csv"] = json!({"schema": {"type": "string"}});
            o["responses"]["200"]["content"]["text/html"] = json!({"schema": {"type": "string"}});
        }
        if op.path == "/qr/passes" && op.method == "post" {
            o["responses"]["501"] = err("this server has no QR signing key (anju serve --qr-key)");
        }
        if op.path == "/persons/{id}/faces" {
            o["responses"]["422"] = err("the photo holds no single usable face");
        }
        if op.params.iter().any(|p| p.0 == "If-Match") {
            o["responses"]["412"] = err("stale: the object changed since its ETag was read");
            o["responses"]["428"] = err("If-Match is required");
        }
        const CREATES: [&str; 7] = [
            "RegisterBody",
            "IssueBody",
            "WatchBody",
            "UserBody",
            "EntranceBody",
            "DeviceBody",
            "PassBody",
        ];
        if op.method == "post" && op.body.is_some_and(|b| CREATES.contains(&b)) {
            o["responses"]["201"] = json!({"description": "created", "content": {"application/json": {"schema": r(op.response)}}});
        }
        if op.path == "/alerts" {
            o["responses"]["304"] = json!({"description": "not modified since the ETag sent"});
        }
        if let Some(b) = op.body {
            o["requestBody"] = if b == "Ledger" {
                json!({"required": true, "content": {
                    "text/csv": {"schema": r(b)},
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": r(b)},
                }})
            } else if b == "Photo" {
                if op.path == "/persons/{id}/faces" {
                    o["responses"]["501"] = err("no face enroller on this server");
                }
                json!({"required": true, "content": {
                    "image/jpeg": {"schema": r(b)},
                    "image/png": {"schema": r(b)},
                }})
            } else {
                json!({"required": true, "content": {"application/json": {"schema": r(b)}}})
            };
        }
        if op.auth {
            o["security"] = json!([{"bearer": []}]);
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = o;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Anju dashboard API", "version": "1", "description": "DESIGN §6 Contract — dashboard API (v1). Anything outside the caller's scope answers 404."},
        "servers": [{"url": crate::API_PREFIX}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

/// `GET /openapi.json`.
pub async fn document() -> Response {
    crate::json(spec())
}
