#!/usr/bin/env python3
"""Writes killkrill-svc/src/serve/http/openapi.json (the OpenAPI 3 document
served at GET /api/v1/openapi.json). Edit here, run, commit both; the
serve_query test checks the document against the router's routes."""
import json, os

def p(name, desc, schema=None, required=False, where="query"):
    return {"name": name, "in": where, "required": required, "description": desc,
            "schema": schema or {"type": "string"}}

ERR = {"$ref": "#/components/responses/Error"}
LIMIT = {"$ref": "#/components/responses/Limit"}
filters = [
    p("query", "Full text: every token must occur in the message, a structured-data value or an attribute value (ASCII case-insensitive)."),
    p("severity", "This severity or a more severe one: emerg, alert, crit, err, warning, notice, info, debug, or 0-7."),
    p("host", "Exact host."), p("app", "Exact app."), p("source", "Exact source (syslog-udp, http, loki, ...)."),
    {"name": "field", "in": "query", "style": "deepObject", "explode": True,
     "description": "field.<name>=<value>: a structured-data parameter `sdid.param` or an attribute equals the value (repeatable, at most 16).",
     "schema": {"type": "object", "additionalProperties": {"type": "string"}}},
]
times = [p("start", "RFC 3339, epoch seconds/ms/us/ns, `now`, or relative (`-15m`, `now-1h`). Default: end - query.max_range_secs."),
         p("end", "As start. Default: now. Exclusive.")]
def op(summary, tag, params=None, responses=None, body=None, desc=None):
    o = {"summary": summary, "tags": [tag], "responses": responses or {"200": {"description": "OK"}}}
    if desc: o["description"] = desc
    if params: o["parameters"] = params
    if body: o["requestBody"] = body
    return o

prom_params = {
    "query": [p("query", "PromQL expression.", required=True), p("time", "Evaluation time (RFC 3339 or Unix seconds); default now."), p("timeout", "Evaluation timeout (capped by query.timeout_ms).")],
    "query_range": [p("query", "PromQL expression.", required=True), p("start", "Start time.", required=True), p("end", "End time.", required=True), p("step", "Step (duration or seconds).", required=True), p("timeout", "Evaluation timeout.")],
    "series": [{"name": "match[]", "in": "query", "required": True, "description": "Series selector (repeatable).", "schema": {"type": "array", "items": {"type": "string"}}}, p("start", "Start time (default: end - max range)."), p("end", "End time (default now).")],
    "labels": [{"name": "match[]", "in": "query", "description": "Series selector (repeatable).", "schema": {"type": "array", "items": {"type": "string"}}}, p("start", "Start time."), p("end", "End time.")],
}
PROM = {"200": {"description": "Prometheus envelope `{status: success, data}`.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PromResponse"}}}},
        "400": {"description": "bad_data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PromResponse"}}}},
        "422": {"description": "execution (including a limit: max_series, max_samples, max_range)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PromResponse"}}}},
        "503": {"description": "timeout", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PromResponse"}}}}}
form = {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}}}
def prom(summary, params=None, post=True):
    d = {"get": op(summary, "prometheus", params, PROM)}
    if post:
        d["post"] = op(summary + " (form body)", "prometheus", None, PROM, form)
    return d

ingest_resp = {"200": {"description": "Accepted"}, "204": {"description": "Accepted"}, "400": ERR, "413": ERR, "415": ERR, "429": ERR, "503": ERR}
paths = {
    "/healthz": {"get": op("Liveness", "ops")},
    "/readyz": {"get": op("Readiness: database and queue answer", "ops", responses={"200": {"description": "ready"}, "503": ERR})},
    "/metrics": {"get": op("The process's own metrics (Prometheus text)", "ops")},
    "/api/v1/openapi.json": {"get": op("This document", "ops")},
    "/api/v1/logs": {
        "post": op("Ingest JSON logs (object, array or NDJSON; gzip/zstd)", "ingest", responses=ingest_resp,
                   body={"required": True, "content": {"application/json": {"schema": {}}, "application/x-ndjson": {"schema": {}}}}),
        "get": op("Search logs: one page of canonical records", "logs", filters + times + [
            p("limit", "Page size, 1..query.max_limit (default query.default_limit).", {"type": "integer"}),
            p("cursor", "next_cursor of the previous page, unchanged."),
            p("order", "newest (default, also desc) or oldest (asc)."),
        ], {"200": {"description": "A page", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LogPage"}}}}, "400": ERR, "422": LIMIT, "503": ERR}),
    },
    "/api/v1/logs/volume": {"get": op("Record counts per time bucket and severity", "logs", filters + times + [
        p("step", "Bucket width (e.g. 1m); default: about 100 buckets. At most query.max_buckets buckets.")],
        {"200": {"description": "Buckets", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Volume"}}}}, "400": ERR, "422": LIMIT, "503": ERR})},
    "/api/v1/logs/tail": {"get": op("Live tail (Server-Sent Events)", "logs", filters,
        {"200": {"description": "`event: log` with a canonical record as data (id: its cursor), every matching record committed after the connect once, in order; `: heartbeat` comments; `event: gap` with {reason, until, limit, message} when query.tail_late_window_records was reached and late records at or before `until` are not tailed; a final `event: error` with {error, reason} when the client is too slow (reason slow_client), the store fails or the server shuts down.", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
         "400": ERR, "429": {"description": "Too many live tails: `limit` names query.max_tails_per_tenant or query.max_tails; Retry-After.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}})},
    "/api/v1/metrics": {"get": op("Native metric query: series with points from raw samples or rollups", "metrics", [
        p("name", "Metric name."), p("match", "A PromQL series selector, e.g. {job=\"api\"}."),
        {"name": "label", "in": "query", "style": "deepObject", "explode": True, "description": "label.<name>=<value> equality matchers.", "schema": {"type": "object", "additionalProperties": {"type": "string"}}},
        p("start", "As for logs; default end - 1h."), p("end", "Default now."),
        p("step", "Bucket width; with rollups a multiple of the resolution (default: the resolution)."),
        p("resolution", "raw (default) or a stored rollup resolution such as 10s or 1m."),
        p("aggregation", "Per bucket: avg (default), sum, min, max, count, first, last, increase, p50, p90, p95, p99, p999."),
    ], {"200": {"description": "Series", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MetricSeries"}}}}, "400": ERR, "422": LIMIT, "503": ERR})},
    "/api/v1/import/prometheus": {"post": op("Import Prometheus text / OpenMetrics", "ingest", responses=ingest_resp, body={"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}})},
    "/metrics/job/{job}": {m: op("Pushgateway-style push", "ingest", [p("job", "Job label.", required=True, where="path")], ingest_resp, {"content": {"text/plain": {"schema": {"type": "string"}}}}) for m in ("post", "put")},
    "/metrics/job/{job}/{labels}": {m: op("Pushgateway-style push with grouping labels", "ingest", [p("job", "Job label.", required=True, where="path"), p("labels", "name/value/... pairs (several path segments; axum route {*labels}), each percent-encoded; name@base64/<base64url> for a value that is empty or holds '/'. At most 32 labels, names of 1 KiB, values of 8 KiB; no empty segment, no __ prefix, no name twice.", required=True, where="path")], ingest_resp, {"content": {"text/plain": {"schema": {"type": "string"}}}}) for m in ("post", "put")},
    "/metrics/job@base64/{job}": {m: op("Pushgateway-style push, the job name in base64url", "ingest", [p("job", "Job label, base64url.", required=True, where="path")], ingest_resp, {"content": {"text/plain": {"schema": {"type": "string"}}}}) for m in ("post", "put")},
    "/metrics/job@base64/{job}/{labels}": {m: op("Pushgateway-style push with grouping labels, the job name in base64url", "ingest", [p("job", "Job label, base64url.", required=True, where="path"), p("labels", "name/value/... pairs, as for /metrics/job/{job}/{labels}.", required=True, where="path")], ingest_resp, {"content": {"text/plain": {"schema": {"type": "string"}}}}) for m in ("post", "put")},
    "/loki/api/v1/push": {"post": op("Loki push (JSON or protobuf+snappy)", "ingest", responses=ingest_resp, body={"required": True, "content": {"application/json": {"schema": {}}, "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}})},
    "/api/v1/write": {"post": op("Prometheus remote write (1.0 and 2.0, snappy)", "ingest", responses=ingest_resp, body={"required": True, "content": {"application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}})},
    "/api/v1/query": prom("PromQL instant query", prom_params["query"]),
    "/api/v1/query_range": prom("PromQL range query", prom_params["query_range"]),
    "/api/v1/series": prom("Series matching selectors", prom_params["series"]),
    "/api/v1/labels": prom("Label names", prom_params["labels"]),
    "/api/v1/label/{name}/values": {"get": op("Values of one label", "prometheus", [p("name", "Label name.", required=True, where="path")] + prom_params["labels"], PROM)},
    "/api/v1/metadata": {"get": op("Metric metadata (empty: none kept)", "prometheus", None, PROM)},
    "/api/v1/status/buildinfo": {"get": op("Build information", "prometheus", None, PROM)},
    "/api/v1/format_query": prom("Pretty-print a query", [p("query", "PromQL.", required=True)]),
    "/api/v1/query_exemplars": prom("Exemplars (always empty)", [p("query", "PromQL.", required=True)]),
    "/api/v1/rules": {"get": op("Rules (none)", "prometheus", None, PROM)},
    "/api/v1/alerts": {"get": op("Alerts (none)", "prometheus", None, PROM)},
}
JSON_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
AUTH_RESP = {"200": {"description": "OK"}, "400": ERR, "401": ERR, "403": ERR, "404": ERR, "429": ERR}
idp = [p("id", "Id.", required=True, where="path")]
paths.update({
    "/api/v1/auth/login": {"post": op("Log in with email and password (and a TOTP or recovery code when enrolled): an access token and a refresh token", "auth", body=JSON_BODY, responses=AUTH_RESP)},
    "/api/v1/auth/refresh": {"post": op("Rotate a refresh token (reuse of a rotated one revokes its family)", "auth", body=JSON_BODY, responses=AUTH_RESP)},
    "/api/v1/auth/me": {"get": op("The caller", "auth", responses=AUTH_RESP)},
    "/api/v1/auth/logout": {"post": op("Revoke the caller's refresh tokens", "auth", responses=AUTH_RESP)},
    "/api/v1/auth/password": {"post": op("Change the caller's password (revokes its sessions)", "auth", body=JSON_BODY, responses=AUTH_RESP)},
    "/api/v1/auth/totp/enrol": {"post": op("Start TOTP enrolment: secret and otpauth URI", "auth", responses=AUTH_RESP)},
    "/api/v1/auth/totp/confirm": {"post": op("Confirm TOTP enrolment with a code: recovery codes", "auth", body=JSON_BODY, responses=AUTH_RESP)},
    "/api/v1/api-keys": {"get": op("API keys of the caller's tenant", "admin", responses=AUTH_RESP),
                         "post": op("Create an API key (the key is shown once)", "admin", body=JSON_BODY, responses=AUTH_RESP)},
    "/api/v1/api-keys/{id}": {"delete": op("Revoke an API key", "admin", idp, AUTH_RESP)},
    "/api/v1/users": {"get": op("Users", "admin", responses=AUTH_RESP), "post": op("Create a user", "admin", body=JSON_BODY, responses=AUTH_RESP)},
    "/api/v1/users/{id}": {"get": op("One user", "admin", idp, AUTH_RESP), "patch": op("Change role, password or lock state", "admin", idp, AUTH_RESP, JSON_BODY),
                           "delete": op("Delete a user", "admin", idp, AUTH_RESP)},
    "/api/v1/users/{id}/totp": {"delete": op("Reset a user's TOTP", "admin", idp, AUTH_RESP)},
    "/api/v1/tenants": {"get": op("Tenants", "admin", responses=AUTH_RESP), "post": op("Create a tenant", "admin", body=JSON_BODY, responses=AUTH_RESP)},
    "/api/v1/audit": {"get": op("The audit log: who, when, what, from where, result", "admin", responses=AUTH_RESP)},
})
PUBLIC = {"/healthz", "/readyz", "/metrics", "/api/v1/auth/login", "/api/v1/auth/refresh"}
for path, item in paths.items():
    if path in PUBLIC:
        for o in item.values():
            o["security"] = []
doc = {
    "openapi": "3.0.3",
    "info": {"title": "Killkrill HTTP API", "version": "0.1.0",
             "description": "Ingest, operations and read routes of `killkrill serve`. Every data route is scoped to the caller's tenant. Errors of the native routes are {error, detail, parameter?, limit?}; the Prometheus routes use Prometheus's envelope."},
    "tags": [{"name": t} for t in ("ops", "ingest", "logs", "metrics", "prometheus", "auth", "admin")],
    "security": [{"ApiKey": []}, {"Bearer": []}],
    "paths": paths,
    "components": {
        "securitySchemes": {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "Bearer": {"type": "http", "scheme": "bearer", "description": "An API key or a JWT access token from /api/v1/auth/login."},
        },
        "responses": {
            "Error": {"description": "Refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "Limit": {"description": "A configured limit was exceeded (`limit` names it, e.g. query.max_range_secs, query.max_series, query.max_points, query.max_buckets, query.timeout_ms)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "detail": {"type": "string", "nullable": True}, "parameter": {"type": "string"}, "limit": {"type": "string"}}},
            "LogRecord": {"type": "object", "description": "The canonical JSON form (docs/src/event-model.md).", "properties": {
                "id": {"type": "string"}, "tenant": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"},
                "severity": {"type": "string", "nullable": True}, "facility": {"type": "string", "nullable": True}, "host": {"type": "string", "nullable": True},
                "app": {"type": "string", "nullable": True}, "procid": {"type": "string", "nullable": True}, "msgid": {"type": "string", "nullable": True},
                "structured_data": {"type": "object", "nullable": True}, "message": {"type": "string", "nullable": True}, "source": {"type": "string"},
                "attributes": {"type": "object"}, "parse_error": {"type": "string", "nullable": True}}},
            "LogPage": {"type": "object", "required": ["data", "next_cursor"], "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/LogRecord"}}, "next_cursor": {"type": "string", "nullable": True}}},
            "Volume": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {"start": {"type": "string", "format": "date-time"}, "total": {"type": "integer"}, "by_severity": {"type": "object", "additionalProperties": {"type": "integer"}}}}},
                "step_seconds": {"type": "number"}, "blocks_from_summary": {"type": "integer"}, "blocks_decoded": {"type": "integer"}}},
            "MetricSeries": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}, "points": {"type": "array", "items": {"type": "array", "description": "[unix ms, value] (non-finite values as strings)", "items": {}}}}}},
                "resolution": {"type": "string"}, "aggregation": {"type": "string", "nullable": True}, "step_seconds": {"type": "number", "nullable": True}}},
            "PromResponse": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["success", "error"]}, "data": {}, "errorType": {"type": "string"}, "error": {"type": "string"}, "warnings": {"type": "array", "items": {"type": "string"}}}},
        },
    },
}
out = os.path.join(os.path.dirname(__file__), "..", "killkrill-svc", "src", "serve", "http", "openapi.json")
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
