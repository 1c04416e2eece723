"""A local HTTPS server on 127.0.0.1 that speaks the documented request and response shapes of the
outbound endpoints, for tests (never a real endpoint):

- Salesforce Bulk API 2.0 ingest (``/services/data/vXX.X/jobs/ingest``): create job (state Open),
  upload CSV data (``PUT .../batches``, 201), Upload Complete (``PATCH`` state UploadComplete), job
  info (InProgress, then JobComplete with the record counts), ``successfulResults/`` (``sf__Id``,
  ``sf__Created`` + the row) and ``failedResults/`` (``sf__Id``, ``sf__Error`` + the row);
- HubSpot ``POST /crm/v3/objects/companies/batch/upsert``: 200 with ``results``, or 207 with
  ``errors`` naming the refused ids in ``context``; 401 without the bearer token;
- a Slack incoming webhook (``POST /services/...``): ``ok``, or ``invalid_payload`` without text.

Faults are scripted: ``throttle(prefix, n, status)`` answers the next ``n`` requests whose path starts
with ``prefix`` with ``status`` (429 or 5xx) and ``Retry-After: 1``; ``refuse`` holds external ids the
CRMs reject. Every request is recorded; ``upserts[crm][id]`` counts the accepted upserts per record.
TLS with a self-signed certificate for 127.0.0.1 (``ca_file``): the clients verify it like a real one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
import re
import ssl
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN = "test-token"
JOB_PATH = re.compile(r"^/services/data/v(?P<version>[\d.]+)/jobs/ingest(?:/(?P<job>[^/]+)(?P<rest>/.*)?)?$")


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (the certificate is its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Job:
    id: str
    body: dict
    state: str = "Open"
    rows: list[dict] = field(default_factory=list)
    polls: int = 0


@dataclass
class Recorded:
    method: str
    path: str
    status: int
    body: bytes


class OutboundServer:
    def __init__(self, directory: Path) -> None:
        self.ca_file, key_file = self_signed(directory)
        self.requests: list[Recorded] = []
        self.upserts: dict[str, Counter] = defaultdict(Counter)
        self.slack_messages: list[dict] = []
        self.refuse: set[str] = set()
        self.jobs: dict[str, Job] = {}
        self._throttles: list[list] = []  # [prefix, remaining, status]
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
                      headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                server.requests.append(Recorded(self.command, self.path, status, self._body))

            def _json(self, status: int, data) -> None:
                self._send(status, json.dumps(data).encode())

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._body = self.rfile.read(length) if length else b""
                with server._lock:
                    for throttle in server._throttles:
                        if self.path.startswith(throttle[0]) and throttle[1] > 0:
                            throttle[1] -= 1
                            body = {"status": "error", "message": "You have reached your secondly limit.",
                                    "errorType": "RATE_LIMIT", "policyName": "SECONDLY"} if throttle[2] == 429 \
                                else {"message": "Server Unavailable"}
                            self._send(throttle[2], json.dumps(body).encode(), headers={"Retry-After": "1"})
                            return
                    if self.path.startswith("/services/data/"):
                        return server._salesforce(self)
                    if self.path.startswith("/crm/v3/objects/companies/batch/upsert"):
                        return server._hubspot(self)
                    if self.path.startswith("/services/"):
                        return server._slack(self)
                    self._send(404, b'{"message": "not found"}')

            do_GET = do_POST = do_PUT = do_PATCH = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> OutboundServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def throttle(self, prefix: str, times: int, status: int = 429) -> None:
        self._throttles.append([prefix, times, status])

    def answered(self, prefix: str, status: int | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(prefix) and (status is None or r.status == status)]

    # ----------------------------------------------------------------- Salesforce Bulk API 2.0

    def _salesforce(self, h) -> None:
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return h._json(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        m = JOB_PATH.match(h.path.split("?")[0])
        if not m:
            return h._json(404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
        version, job_id, rest = m["version"], m["job"], (m["rest"] or "").rstrip("/")
        if h.command == "POST" and job_id is None:
            body = json.loads(h._body)
            if body.get("operation") != "upsert" or not body.get("externalIdFieldName"):
                return h._json(400, [{"message": "upsert needs externalIdFieldName", "errorCode": "INVALIDJOB"}])
            job = Job(f"750R0000000{len(self.jobs) + 1:05d}", body)
            self.jobs[job.id] = job
            return h._json(200, self._job_info(job, version))
        job = self.jobs.get(job_id or "")
        if job is None:
            return h._json(404, [{"message": "Job not found", "errorCode": "NOT_FOUND"}])
        if h.command == "PUT" and rest == "/batches":
            if job.state != "Open":
                return h._json(400, [{"message": "Job is not open", "errorCode": "INVALIDJOB"}])
            job.rows.extend(csv.DictReader(io.StringIO(h._body.decode("utf-8"))))
            return h._send(201)
        if h.command == "PATCH" and not rest:
            state = json.loads(h._body).get("state")
            if state != "UploadComplete":
                return h._json(400, [{"message": f"bad state {state}", "errorCode": "INVALIDJOB"}])
            job.state = "UploadComplete"
            return h._json(200, self._job_info(job, version))
        if h.command == "GET" and not rest:
            if job.state in ("UploadComplete", "InProgress"):
                job.polls += 1
                job.state = "InProgress" if job.polls == 1 else "JobComplete"
                if job.state == "JobComplete":
                    ext = job.body["externalIdFieldName"]
                    for row in job.rows:
                        if row[ext] not in self.refuse:
                            self.upserts["salesforce"][row[ext]] += 1
            return h._json(200, self._job_info(job, version))
        if h.command == "GET" and rest in ("/successfulResults", "/failedResults"):
            ext = job.body["externalIdFieldName"]
            out = io.StringIO()
            good = rest == "/successfulResults"
            rows = [r for r in job.rows if (r[ext] in self.refuse) != good] if job.state == "JobComplete" else []
            names = ["sf__Id", "sf__Created" if good else "sf__Error", *(job.rows[0].keys() if job.rows else [])]
            writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
            writer.writeheader()
            for i, row in enumerate(rows):
                extra = {"sf__Created": "false"} if good else {
                    "sf__Error": "FIELD_CUSTOM_VALIDATION_EXCEPTION:rejected by a validation rule:--"}
                writer.writerow({"sf__Id": f"001R{i:012d}" if good else "", **extra, **row})
            return h._send(200, out.getvalue().encode(), "text/csv")
        return h._json(405, [{"message": "method not allowed", "errorCode": "METHOD_NOT_ALLOWED"}])

    @staticmethod
    def _job_info(job: Job, version: str) -> dict:
        processed = len(job.rows) if job.state == "JobComplete" else 0
        return {"id": job.id, "operation": "upsert", "object": job.body["object"], "createdById": "005R0000000",
                "createdDate": "2026-04-03T01:00:00.000+0000", "systemModstamp": "2026-04-03T01:00:00.000+0000",
                "state": job.state, "externalIdFieldName": job.body["externalIdFieldName"],
                "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(version),
                "contentUrl": f"services/data/v{version}/jobs/ingest/{job.id}/batches",
                "lineEnding": job.body.get("lineEnding", "LF"), "columnDelimiter": job.body.get("columnDelimiter", "COMMA"),
                "numberRecordsProcessed": processed, "numberRecordsFailed": 0, "retries": 0, "totalProcessingTime": 1}

    # ----------------------------------------------------------------- HubSpot batch upsert

    def _hubspot(self, h) -> None:
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return h._json(401, {"status": "error", "message": "Authentication credentials not found.",
                                 "category": "INVALID_AUTHENTICATION"})
        body = json.loads(h._body)
        inputs = body.get("inputs") or []
        if not inputs or len(inputs) > 100 or any("idProperty" not in i or "id" not in i for i in inputs):
            return h._json(400, {"status": "error", "message": "Invalid input JSON", "category": "VALIDATION_ERROR"})
        now = "2026-04-03T01:00:00.000Z"
        results, errors = [], []
        for i, item in enumerate(inputs):
            if item["id"] in self.refuse:
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": f"Property values were not valid for {item['id']}",
                               "context": {"ids": [item["id"]]}})
                continue
            self.upserts["hubspot"][item["id"]] += 1
            results.append({"id": str(9000 + i), "properties": {**item["properties"], item["idProperty"]: item["id"]},
                            "createdAt": now, "updatedAt": now, "archived": False, "new": False})
        payload = {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
        if errors:
            payload.update(errors=errors, numErrors=len(errors))
        h._json(207 if errors else 200, payload)

    # ----------------------------------------------------------------- Slack incoming webhook

    def _slack(self, h) -> None:
        try:
            body = json.loads(h._body)
        except ValueError:
            return h._send(400, b"invalid_payload", "text/plain")
        if not body.get("text"):
            return h._send(400, b"no_text", "text/plain")
        self.slack_messages.append(body)
        h._send(200, b"ok", "text/plain")
