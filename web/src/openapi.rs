//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the JSON API, written out by hand
//! next to the routes (a test checks that every documented operation is routed, and CI runs
//! a validator over the document).

use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(s: Value) -> Value {
    json!({ "application/json": { "schema": s } })
}

fn id_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": what,
            "schema": { "type": "integer", "format": "int64" } })
}

fn text_param(name: &str, place: &str, what: &str) -> Value {
    json!({ "name": name, "in": place, "required": place == "path", "description": what,
            "schema": { "type": "string" } })
}

fn int_query(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": what,
            "schema": { "type": "integer", "minimum": 0 } })
}

/// One operation: summary, parameters, request body schema, and (status, description,
/// response schema) triples; every operation also documents the problem responses.
fn op(
    tag: &str,
    summary: &str,
    parameters: Vec<Value>,
    body: Option<Value>,
    responses: &[(&str, &str, Option<Value>)],
) -> Value {
    let mut out = Map::new();
    out.insert("tags".into(), json!([tag]));
    out.insert("summary".into(), json!(summary));
    out.insert(
        "operationId".into(),
        json!(
            summary
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ),
    );
    if !parameters.is_empty() {
        out.insert("parameters".into(), json!(parameters));
    }
    if let Some(body) = body {
        out.insert(
            "requestBody".into(),
            json!({ "required": true, "content": json_content(body) }),
        );
    }
    let mut codes = Map::new();
    for (code, description, body) in responses {
        let mut r = Map::new();
        r.insert("description".into(), json!(description));
        if let Some(body) = body {
            r.insert("content".into(), json_content(body.clone()));
        }
        codes.insert(code.to_string(), Value::Object(r));
    }
    for (code, description) in [
        (
            "4XX",
            "Bad input, unknown id, wrong state or missing token: a problem naming the field",
        ),
        (
            "5XX",
            "The database is unavailable (503) or an internal error",
        ),
    ] {
        codes.insert(
            code.into(),
            json!({ "description": description, "content": json_content(schema("Problem")) }),
        );
    }
    out.insert("responses".into(), Value::Object(codes));
    Value::Object(out)
}

fn paths() -> Value {
    let campaign = || id_param("id", "Campaign id");
    let session = || id_param("id", "Session id");
    let model = || id_param("id", "Model id");
    let ingest = |what: &str, item: &str| {
        json!({ "post": op("ingest", &format!("Ingest {what}"), vec![], Some(json!({
            "type": "object", "required": ["items"], "additionalProperties": false,
            "properties": {
                "idempotency_key": { "type": ["string", "null"], "description": "A batch sent again with the same key is stored once" },
                "items": { "type": "array", "minItems": 1, "maxItems": 10000, "items": schema(item) }
            }})), &[("201", "Stored", Some(schema("Outcome"))), ("200", "Stored before (same key): nothing stored now", Some(schema("Outcome")))]) })
    };
    json!({
        "/api/v1/agent": { "get": op("agent", "A gateway's agent: status and interface statistics",
            vec![text_param("gateway", "query", "The gateway (default: the server's first)")], None,
            &[("200", "The agent's documents, or why they are unavailable", Some(schema("AgentState")))]) },
        "/api/v1/campaigns": {
            "get": op("campaigns", "List campaigns", vec![], None,
                &[("200", "Campaigns, newest first", Some(json!({ "type": "array", "items": schema("Campaign") })))]),
            "post": op("campaigns", "Create a campaign", vec![], Some(schema("NewCampaign")),
                &[("201", "Created (and started if asked)", Some(schema("Campaign")))])
        },
        "/api/v1/campaigns/{id}": { "get": op("campaigns", "Get a campaign", vec![campaign()], None,
            &[("200", "The campaign with its sessions per limit", Some(schema("CampaignDetail")))]) },
        "/api/v1/campaigns/{id}/start": { "post": op("campaigns", "Start or resume a campaign", vec![campaign()], None,
            &[("200", "Running", Some(schema("Campaign")))]) },
        "/api/v1/campaigns/{id}/stop": { "post": op("campaigns", "Stop a campaign", vec![campaign()], None,
            &[("200", "Stopped; its running session went back to pending", Some(schema("Campaign")))]) },
        "/api/v1/campaigns/{id}/events": { "get": {
            "tags": ["campaigns"], "summary": "Campaign progress as server-sent events", "operationId": "campaign_events",
            "description": "Each event's data is a JSON object with a `type`: `snapshot` first (status, progress, running session), then `session_started` (seq, total, rate_bps, eta_s), `session_ended` (status, failure, progress), `campaign_status`, `store_retrying`.",
            "parameters": [campaign()],
            "responses": {
                "200": { "description": "An event stream", "content": { "text/event-stream": { "schema": { "type": "string" } } } },
                "404": { "description": "No such campaign", "content": json_content(schema("Problem")) }
            } } },
        "/api/v1/campaigns/{id}/export": { "get": {
            "tags": ["campaigns"], "summary": "Download a campaign's dataset", "operationId": "export_campaign",
            "description": "One row per stored session: identity, context (ctx_*), traffic features, labels (label_*). Streamed.",
            "parameters": [campaign(), { "name": "format", "in": "query", "required": true,
                "schema": { "type": "string", "enum": ["csv", "jsonl", "parquet"] } }],
            "responses": {
                "200": { "description": "The dataset", "content": {
                    "text/csv": { "schema": { "type": "string" } },
                    "application/x-ndjson": { "schema": { "type": "string" } },
                    "application/vnd.apache.parquet": { "schema": { "type": "string", "format": "binary" } } } },
                "4XX": { "description": "Unknown campaign or format", "content": json_content(schema("Problem")) }
            } } },
        "/api/v1/campaigns/{id}/next": { "post": op("external clients", "Take the next session of an external campaign",
            vec![campaign()], None, &[("200", "The session, now running", Some(schema("Session"))), ("204", "No session left", None)]) },
        "/api/v1/sessions": { "get": op("sessions", "List sessions", vec![
                int_query("campaign_id", "Only this campaign"),
                json!({ "name": "status", "in": "query", "schema": schema("SessionStatus") }),
                int_query("rate_bps", "Only this limit in bit/s; 0 = unlimited"),
                text_param("label", "query", "NAME=VALUE of an application label, e.g. qoe_class=low"),
                json!({ "name": "sort", "in": "query", "schema": { "type": "string", "enum": ["seq", "id", "rate_bps", "status", "started_ms"] } }),
                json!({ "name": "desc", "in": "query", "schema": { "type": "boolean" } }),
                int_query("page", "Page from 0"),
                json!({ "name": "per_page", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 50 } })
            ], None, &[("200", "One page and the number of all matches (kept up to 1 s unless this server changed something; send Cache-Control: no-cache to read the database)", Some(schema("SessionPage")))]) },
        "/api/v1/sessions/{id}": { "get": op("sessions", "Get a session", vec![session()], None,
            &[("200", "Flows, 1 s series, QoE record and feature row", Some(schema("SessionDetail")))]) },
        "/api/v1/sessions/{id}/start": { "post": op("external clients", "Start playing a session", vec![session()], None,
            &[("200", "The link is shaped and the capture runs", Some(schema("Session")))]) },
        "/api/v1/sessions/{id}/finish": { "post": op("external clients", "Finish a session with its QoE record",
            vec![session()], Some(schema("AppQoe")),
            &[("200", "Stored", Some(schema("Session"))),
              ("422", "A field of the record is refused (the problem names it); the session keeps running, so send the record again", Some(schema("Problem")))]) },
        "/api/v1/sessions/{id}/prediction": { "get": op("sessions", "Predict a session's QoE", vec![session()], None,
            &[("200", "Predictions of the newest models: from the stored features, or live from the running capture", Some(schema("Predictions")))]) },
        "/api/v1/ingest/qos": ingest("QoS reports", "QosReport"),
        "/api/v1/ingest/placements": ingest("placement decisions", "PlacementDecision"),
        "/api/v1/ingest/allocations": ingest("allocation decisions", "AllocationDecision"),
        "/api/v1/analytics": { "get": op("analytics", "List gateway analytics", vec![], None,
            &[("200", "Every analytic with QoS reports or allocation decisions", Some(json!({ "type": "array", "items": schema("AnalyticSeen") })))]) },
        "/api/v1/analytics/{gateway}/{analytic}": { "get": op("analytics", "Get an analytic over time", vec![
                text_param("gateway", "path", "Gateway name"), text_param("analytic", "path", "Analytic id"),
                json!({ "name": "from_ms", "in": "query", "schema": { "type": "integer", "format": "int64" }, "description": "Default: an hour before to_ms" }),
                json!({ "name": "to_ms", "in": "query", "schema": { "type": "integer", "format": "int64" }, "description": "Default: its latest data" })
            ], None, &[("200", "QoS reports and allocation decisions in the window", Some(schema("AnalyticSeries")))]) },
        "/api/v1/models": {
            "get": op("models", "List models", vec![], None,
                &[("200", "Stored models, newest first", Some(json!({ "type": "array", "items": schema("ModelInfo") })))]),
            "post": op("models", "Train a model", vec![], Some(schema("TrainRequest")),
                &[("202", "Checked and training; poll the job", Some(schema("Job")))])
        },
        "/api/v1/models/jobs": { "get": op("models", "List training jobs", vec![], None,
            &[("200", "Jobs since the server started, newest first", Some(json!({ "type": "array", "items": schema("Job") })))]) },
        "/api/v1/models/jobs/{id}": { "get": op("models", "Get a training job", vec![id_param("id", "Job id")], None,
            &[("200", "The job", Some(schema("Job")))]) },
        "/api/v1/models/{id}": {
            "get": op("models", "Get a model", vec![model()], None, &[("200", "The model's record without the fitted body",
                Some(json!({ "type": "object", "properties": { "info": schema("ModelInfo"), "model": { "type": "object" } } })))]),
            "delete": op("models", "Delete a model", vec![model()], None, &[("204", "Deleted", None)])
        },
        "/api/v1/models/{id}/file": { "get": op("models", "Download a model", vec![model()], None,
            &[("200", "The whole model, for qoelab predict --model", Some(json!({ "type": "object" })))]) },
        "/metrics": { "get": {
            "tags": ["operations"], "summary": "Prometheus metrics", "operationId": "metrics",
            "responses": { "200": { "description": "Text exposition format", "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
        "/healthz": { "get": {
            "tags": ["operations"], "summary": "Health", "operationId": "healthz", "security": [],
            "responses": { "200": { "description": "The database answers" }, "503": { "description": "The database is unavailable" } } } }
    })
}

fn schemas() -> Value {
    let nullable = |t: &str| json!({ "type": [t, "null"] });
    let progress = json!({ "type": "object", "required": ["pending", "running", "done", "failed", "discarded"], "properties": {
        "pending": { "type": "integer" }, "running": { "type": "integer" }, "done": { "type": "integer" },
        "failed": { "type": "integer" }, "discarded": { "type": "integer" } } });
    json!({
        "Problem": { "type": "object", "required": ["error"], "properties": {
            "error": { "type": "string", "description": "What was wrong and what to do" },
            "field": { "type": "string", "description": "The field at fault, e.g. limits or items[3].knob" },
            "value": { "type": "string" }, "accepted": { "type": "string" } } },
        "Limit": { "description": "A bandwidth limit: \"unlimited\", a rate as text such as \"5 mbit\", or {\"rate\": RATE} with RATE in integer bit/s or text",
            "oneOf": [ { "type": "string", "description": "\"unlimited\" or a rate with its unit, e.g. \"750kbit\", \"5 mbit\"" },
                { "type": "object", "required": ["rate"], "additionalProperties": false,
                  "properties": { "rate": { "oneOf": [ { "type": "integer", "minimum": 8000 }, { "type": "string" } ] } } } ] },
        "Workload": { "type": "object", "required": ["kind"], "properties": {
            "kind": { "type": "string", "enum": ["video", "iot", "external"] },
            "abr": { "type": "string", "enum": ["buffer", "rate", "mpc"], "description": "video only" },
            "analytics": { "type": "array", "description": "iot only", "minItems": 1, "maxItems": 16, "items": { "type": "object", "required": ["kind", "knob"],
                "properties": { "kind": { "type": "string" }, "knob": { "type": "number", "exclusiveMinimum": 0, "maximum": 1 } } } } } },
        "CampaignSpec": { "type": "object", "required": ["name", "sessions", "duration_s", "limits", "workload"], "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": 100 },
            "sessions": { "type": "integer", "minimum": 1, "maximum": 100000 },
            "duration_s": { "type": "number", "exclusiveMinimum": 0, "maximum": 86400 },
            "warmup_s": { "type": "number", "minimum": 0, "maximum": 3600 },
            "limits": { "type": "array", "minItems": 1, "items": schema("Limit") },
            "delays_ms": { "type": "array", "items": { "type": "number", "minimum": 0, "maximum": 10000 } },
            "losses": { "type": "array", "items": { "type": "number", "minimum": 0, "maximum": 1 } },
            "workload": schema("Workload"),
            "seed": { "type": "integer", "minimum": 0 },
            "gateway": { "type": "string", "pattern": "^[a-z0-9-]{1,32}$", "description": "The gateway whose link runs the sessions (default: the server's first); one the server does not have is refused (422)" } } },
        "NewCampaign": { "allOf": [ schema("CampaignSpec"), { "type": "object", "properties": {
            "start": { "type": "boolean", "default": false, "description": "Start it right away" } } } ] },
        "CampaignStatus": { "type": "string", "enum": ["pending", "running", "stopped", "done"] },
        "SessionStatus": { "type": "string", "enum": ["pending", "running", "done", "failed", "discarded"] },
        "Progress": progress,
        "Campaign": { "type": "object", "properties": {
            "id": { "type": "integer" }, "spec": schema("CampaignSpec"), "status": schema("CampaignStatus"),
            "created_ms": { "type": "integer" }, "updated_ms": { "type": "integer" }, "progress": schema("Progress") } },
        "CampaignDetail": { "allOf": [ schema("Campaign"), { "type": "object", "properties": {
            "by_limit": { "type": "array", "items": { "type": "object", "properties": {
                "rate_bps": nullable("integer"), "progress": schema("Progress") } } } } } ] },
        "Profile": { "type": "object", "properties": {
            "rate_bps": nullable("integer"), "delay_ms": nullable("number"), "loss": nullable("number") } },
        "Session": { "type": "object", "properties": {
            "id": { "type": "integer" }, "campaign_id": { "type": "integer" }, "seq": { "type": "integer" },
            "profile": schema("Profile"), "workload": { "type": "string" }, "status": schema("SessionStatus"),
            "attempts": { "type": "integer" }, "started_ms": nullable("integer"), "finished_ms": nullable("integer"),
            "failure": nullable("string"), "capture_id": nullable("string") } },
        "SessionPage": { "type": "object", "properties": {
            "sessions": { "type": "array", "items": schema("Session") }, "total": { "type": "integer" } } },
        "Bin": { "type": "object", "properties": {
            "flow_idx": nullable("integer"), "bin": { "type": "integer" }, "start_ms": { "type": "integer" },
            "c2s_bytes": { "type": "integer" }, "s2c_bytes": { "type": "integer" }, "c2s_pkts": { "type": "integer" },
            "s2c_pkts": { "type": "integer" }, "c2s_retx": { "type": "integer" }, "s2c_retx": { "type": "integer" } } },
        "SessionDetail": { "type": "object", "properties": {
            "session": schema("Session"),
            "flows": { "type": "array", "items": { "type": "object", "description": "Flow statistics (see COLUMNS.md)" } },
            "series": { "type": "array", "items": schema("Bin") },
            "application": { "type": ["object", "null"], "description": "The application's QoE record" },
            "features": { "type": "object", "description": "The dataset row" } } },
        "Prediction": { "type": "object", "properties": {
            "class": { "type": "string" }, "class_index": { "type": "integer" },
            "probabilities": { "type": "array", "items": { "type": "number" } } } },
        "Predictions": { "type": "object", "properties": {
            "source": { "type": "string", "enum": ["stored", "live", "none"] }, "note": nullable("string"),
            "predictions": { "type": "array", "items": { "type": "object", "properties": {
                "model": schema("ModelInfo"), "prediction": { "oneOf": [ schema("Prediction"), { "type": "null" } ] },
                "error": nullable("string"), "classes": { "type": "array", "items": { "type": "string" } },
                "actual": { "description": "The label column's value, if stored" } } } } } },
        "QosReport": { "type": "object", "additionalProperties": false,
            "required": ["gateway", "analytic", "kind", "ts_ms", "knob", "expected_qos", "achieved_qos"], "properties": {
            "gateway": { "type": "string" }, "analytic": { "type": "string" }, "kind": { "type": "string" },
            "ts_ms": { "type": "integer", "description": "Unix ms" },
            "knob": { "type": "number", "exclusiveMinimum": 0, "maximum": 1 },
            "expected_qos": { "type": "number", "minimum": 0, "maximum": 1 },
            "achieved_qos": { "type": "number", "minimum": 0, "maximum": 1 },
            "throughput_bps": nullable("number"), "latency_ms": nullable("number"), "extra": {} } },
        "PlacementDecision": { "type": "object", "additionalProperties": false,
            "required": ["gateway", "analytic", "location", "image", "ts_ms"], "properties": {
            "gateway": { "type": "string" }, "analytic": { "type": "string" },
            "location": { "type": "string", "enum": ["edge", "cloud"] }, "image": { "type": "string" },
            "layers_fetched": { "type": "array", "items": { "type": "string" } },
            "bytes_fetched": { "type": "integer", "minimum": 0 }, "ts_ms": { "type": "integer" } } },
        "AllocationDecision": { "type": "object", "additionalProperties": false,
            "required": ["gateway", "analytic", "knob", "rate_bps", "algorithm", "ts_ms"], "properties": {
            "gateway": { "type": "string" }, "analytic": { "type": "string" },
            "knob": { "type": "number", "exclusiveMinimum": 0, "maximum": 1 },
            "rate_bps": { "type": "integer", "minimum": 0 }, "algorithm": { "type": "string" }, "ts_ms": { "type": "integer" } } },
        "AppQoe": app_qoe(),
        "Outcome": { "type": "object", "properties": {
            "stored": { "type": "integer" }, "duplicate": { "type": "boolean" } } },
        "AnalyticSeen": { "type": "object", "properties": {
            "gateway": { "type": "string" }, "analytic": { "type": "string" }, "kind": nullable("string"),
            "reports": { "type": "integer" }, "allocations": { "type": "integer" },
            "first_ms": { "type": "integer" }, "last_ms": { "type": "integer" } } },
        "AnalyticSeries": { "type": "object", "properties": {
            "analytic": schema("AnalyticSeen"), "from_ms": { "type": "integer" }, "to_ms": { "type": "integer" },
            "qos": { "type": "array", "items": schema("QosReport") },
            "allocations": { "type": "array", "items": schema("AllocationDecision") } } },
        "ModelInfo": { "type": "object", "properties": {
            "id": { "type": "integer" }, "name": { "type": "string" }, "algorithm": { "type": "string" },
            "label": { "type": "string" }, "fingerprint": { "type": "string" },
            "metrics": { "description": "The headline evaluation: method and metrics" }, "created_ms": { "type": "integer" } } },
        "TrainRequest": { "type": "object", "additionalProperties": false, "required": ["name", "campaign_id", "label"], "properties": {
            "name": { "type": "string" }, "campaign_id": { "type": "integer" },
            "label": { "type": "string", "description": "A label column, or NAME:COLUMN>VALUE, e.g. stall:label_stall_count>0" },
            "thresholds": nullable("string"), "classes": nullable("string"),
            "model": { "type": "string", "enum": ["rf", "tree", "logreg", "nb"], "default": "rf" },
            "folds": { "type": "integer", "minimum": 0, "default": 5 }, "holdout": nullable("number"),
            "trees": { "type": "integer", "minimum": 1, "default": 100 }, "max_depth": nullable("integer"),
            "balance": { "type": "string", "enum": ["none", "weights", "undersample"], "default": "none" },
            "missing": { "type": "string", "enum": ["error", "drop", "median"], "default": "median" },
            "seed": { "type": "integer", "minimum": 0, "default": 0 } } },
        "Job": { "type": "object", "properties": {
            "id": { "type": "integer" }, "name": { "type": "string" }, "campaign_id": { "type": "integer" },
            "model": { "type": "string" }, "started_ms": { "type": "integer" },
            "state": { "type": "string", "enum": ["running", "done", "failed"] },
            "step": { "type": "string" }, "model_id": { "type": "integer" }, "error": { "type": "string" } } },
        "AgentState": { "type": "object", "properties": {
            "gateway": { "type": "string" }, "connected": { "type": "boolean" }, "status": { "type": ["object", "null"] },
            "interfaces": { "type": ["array", "null"], "items": { "type": "object" } }, "error": nullable("string") } }
    })
}

/// `qoelab.app-qoe.v1`, an external client's application data (`workload/FORMATS.md`): the
/// video QoE record's fields with their types and units, any other field a label.
fn app_qoe() -> Value {
    let or_null = |t: &str, mut extra: Value| {
        extra["type"] = json!([t, "null"]);
        extra
    };
    let text = || or_null("string", json!({}));
    let count = |unit: &str| or_null("integer", json!({ "minimum": 0, "description": unit }));
    let seconds = |what: &str| or_null("number", json!({ "minimum": 0, "description": what }));
    let array = |items: Value| or_null("array", json!({ "items": items }));
    json!({
        "type": "object",
        "description": "qoelab.app-qoe.v1 (workload/FORMATS.md): the fields of the video QoE record (qoelab.video-qoe.v1) with its types and units, any of them may be left out or null (not measured); every other field is a label named with lowercase letters, digits and _ (dataset column label_NAME) holding a number, boolean, string or null",
        "propertyNames": { "pattern": "^[a-z0-9_]{1,64}$" },
        "additionalProperties": { "type": ["number", "boolean", "string", "null"] },
        "properties": {
            "schema": { "type": "string", "enum": ["qoelab.app-qoe.v1", "qoelab.video-qoe.v1"] },
            "session": text(), "server": text(), "abr": text(),
            "started_unix_ms": or_null("integer", json!({ "minimum": 946_684_800_000u64, "maximum": 4_102_444_800_000u64,
                "description": "Session start, Unix ms; stalls count from it" })),
            "duration_s": seconds("Session start to end, s"),
            "media_s": seconds("Media downloaded, s"),
            "segment_duration_s": seconds("Media length of a segment, s"),
            "ladder_bps": array(json!({ "type": "integer", "minimum": 0 })),
            "startup_delay_s": seconds("Session start to playback start, s"),
            "stall_count": count("Stalls after startup"),
            "stall_time_s": seconds("Total stall time after startup, s"),
            "stall_ratio": or_null("number", json!({ "minimum": 0, "maximum": 1 })),
            "avg_bitrate_bps": count("Mean bitrate played, bit/s"),
            "switch_count": count("Bitrate switches"),
            "switch_magnitude_bps": count("Sum of bitrate changes, bit/s"),
            "bytes": count("Media bytes received"),
            "avg_throughput_bps": count("Download throughput, bit/s"),
            "qoe_lin": or_null("number", json!({})), "qoe_log": or_null("number", json!({})),
            "stall": or_null("boolean", json!({})),
            "qoe_class": { "enum": ["low", "medium", "high", null] },
            "stalls": array(json!({ "type": "object", "required": ["start_s", "duration_s"], "additionalProperties": false,
                "properties": { "start_s": { "type": "number", "minimum": 0, "description": "s since the session's start" },
                    "duration_s": { "type": "number", "exclusiveMinimum": 0 } } })),
            "segments": array(json!({ "type": "object", "additionalProperties": { "type": "number", "minimum": 0 } }))
        }
    })
}

/// The document.
pub fn spec() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "qoelab",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Labeling campaigns, sessions, datasets, QoE models and gateway analytics. Rates are integer bit/s, times Unix ms. With a token configured, send Authorization: Bearer TOKEN."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}

/// `GET /api/openapi.json`.
pub async fn document() -> impl IntoResponse {
    axum::Json(spec())
}
