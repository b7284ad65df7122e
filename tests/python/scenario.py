#!/usr/bin/env python3
"""Drives a running egov stack as a third-party client written from the public
contract only (proto/egov/v1/*.proto and docs/envelope.md).

    python3 tests/python/scenario.py --keys DIR --workstation HOST:PORT \
        --gateway HOST:PORT --regional HOST:PORT

Prints one `ok: ...` (or `FAIL: ...`) line per check and, last,
`N passed, M failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import traceback
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc  # noqa: E402

import egov_client as ec  # noqa: E402

OPERATOR = "operator-1"
OPERATOR_PASSWORD = "operator-1-password"
WORKSTATION = "sc-workstation"
SERVICE_CODE = "kz.astana.education.meeting-permission"
APPLICANT_IIN = "850715300122"
LOOKUP_IIN = "900101400122"
RPC_TIMEOUT_S = 15
REGISTRATION_PATIENCE_S = 20


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, what: str):
        self.passed += 1
        print(f"ok: {what}", flush=True)

    def fail(self, what: str, why: str):
        self.failed += 1
        print(f"FAIL: {what}: {why}", flush=True)

    def run(self, what: str, step):
        """Runs one step; its return value is a short detail for the ok line.
        Returns whether it passed."""
        try:
            detail = step()
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
            self.fail(what, f"{type(e).__name__}: {e}")
            if not isinstance(e, (AssertionError, ec.EnvelopeError, grpc.RpcError)):
                traceback.print_exc(file=sys.stderr)
            return False
        self.ok(f"{what}" + (f" ({detail})" if detail else ""))
        return True


def expect(condition: bool, message: str):
    if not condition:
        raise AssertionError(message)


def expect_refusal(call, code: grpc.StatusCode, reason: str) -> str:
    """Calls and expects a gRPC refusal with this status code and reason code."""
    try:
        call()
    except grpc.RpcError as e:
        got_reason = ec.refusal_reason(e)
        expect(e.code() == code, f"status {e.code()}, expected {code}; message {e.details()!r}")
        expect(got_reason == reason, f"reason {got_reason!r}, expected {reason!r}; message {e.details()!r}")
        expect((e.details() or "").startswith(reason + ": "), f"message {e.details()!r} does not start with {reason}")
        return f"{code.name}, {reason}"
    raise AssertionError(f"accepted, expected {code.name} {reason}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", required=True, help="the key directory (trust.toml, secrets/)")
    parser.add_argument("--workstation", required=True, help="HOST:PORT of the State Corporation workstation")
    parser.add_argument("--gateway", required=True, help="HOST:PORT of the e-government gateway")
    parser.add_argument("--regional", required=True, help="HOST:PORT of the regional gateway ARM")
    parser.add_argument("--vectors", default=str(ec.VECTORS_FILE), help="docs/envelope-vectors.json")
    args = parser.parse_args(argv)

    checks = Checks()
    s = ec.load_stubs()
    pb_env, pb_ws, pb_gw, pb_ind, pb_reg = s.envelope_pb2, s.workstation_pb2, s.gateway_pb2, s.individuals_pb2, s.regional_pb2

    # a. The test vectors.
    def vectors():
        return f"{len(ec.self_test(args.vectors))} vector checks"

    checks.run("docs/envelope-vectors.json reproduced exactly", vectors)

    keys: dict = {}

    def load_keys():
        keys["trust"] = ec.TrustRegistry.load(Path(args.keys, "trust.toml"))
        keys["operator"] = ec.Signer.from_key_dir(args.keys, OPERATOR, keys["trust"])
        keys["workstation"] = ec.Signer.from_key_dir(args.keys, WORKSTATION, keys["trust"])
        return f"{len(keys['trust'].members)} members; {keys['operator'].key_id}, {keys['workstation'].key_id}"

    if not checks.run("trust.toml and the seeds of operator-1 and sc-workstation read", load_keys):
        print(f"{checks.passed} passed, {checks.failed} failed", flush=True)
        return 1
    trust, operator, workstation_key = keys["trust"], keys["operator"], keys["workstation"]

    workstation = s.workstation_pb2_grpc.WorkstationServiceStub(grpc.insecure_channel(args.workstation))
    gateway = s.gateway_pb2_grpc.GatewayServiceStub(grpc.insecure_channel(args.gateway))
    regional = s.regional_pb2_grpc.RegionalGatewayServiceStub(grpc.insecure_channel(args.regional))

    state: dict = {"application_id": f"py-{uuid.uuid4().hex[:16]}"}
    app_id = state["application_id"]

    def operator_envelope(service_id: str, body_type: str, body: bytes):
        header = ec.build_header(
            service_id=service_id,
            sender_id=OPERATOR,
            recipient_id=WORKSTATION,
            correlation_id=app_id,
            body_type=body_type,
        )
        return ec.seal(operator, header, body)

    # b. The operator: login, form, submission, registration.
    def login():
        answer = workstation.Login(pb_ws.LoginRequest(login=OPERATOR, password=OPERATOR_PASSWORD), timeout=RPC_TIMEOUT_S)
        expect(answer.session_id != "", "no session id")
        expect(answer.operator_id == OPERATOR, f"operator id {answer.operator_id!r}")
        state["session"] = answer.session_id
        return f"operator {answer.operator_id}"

    def open_form():
        form = pb_ws.ApplicationForm(session_id=state["session"], service_code=SERVICE_CODE, applicant_iin=APPLICANT_IIN)
        envelope = operator_envelope("sc.form.open.v1", "egov.v1.ApplicationForm", form.SerializeToString())
        answer = workstation.OpenForm(pb_ws.OpenFormRequest(envelope=envelope), timeout=RPC_TIMEOUT_S)
        application = answer.application
        expect(application.application_id == app_id, f"application id {application.application_id!r}")
        expect(application.current_step == "process-5", f"current step {application.current_step!r}, not process-5")
        expect(application.outcome == "", f"outcome {application.outcome!r}")
        conditions = [r for r in application.path if r.step_id == "condition-1"]
        expect(conditions and conditions[-1].branch == "yes", f"condition-1 records {conditions}")
        expect(answer.applicant.iin == APPLICANT_IIN, f"applicant {answer.applicant.iin!r}")
        return f"{app_id}: condition-1 yes, now at process-5"

    def submit():
        documents = []
        for kind, title, content in [
            ("application-form", "Application form", b"%PDF-1.4 scan of the signed application form\n"),
            ("identity-document", "Identity card", b"%PDF-1.4 scan of the identity card 045123987\n"),
        ]:
            documents.append(
                pb_ws.AttachedDocument(
                    kind=kind, title=title, pages=1, sha256=hashlib.sha256(content).hexdigest(), content=content
                )
            )
        submission = pb_ws.ApplicationSubmission(session_id=state["session"], application_id=app_id, documents=documents)
        envelope = operator_envelope("sc.form.submit.v1", "egov.v1.ApplicationSubmission", submission.SerializeToString())
        answer = workstation.SubmitApplication(pb_ws.SubmitApplicationRequest(envelope=envelope), timeout=RPC_TIMEOUT_S)
        application = answer.application
        expect(application.application_id == app_id, f"application id {application.application_id!r}")
        expect(application.outcome == "", f"outcome {application.outcome!r}")
        expect(any(r.step_id == "process-5" for r in application.path), "process-5 is not in the path")
        expect(application.current_step != "process-5", "still at process-5")
        # The gateway's receipt of process 6 (docs/envelope.md, "The gateway's receipt"): an
        # AsyncReceipt signed by the gateway, a response to the workstation for its message.
        receipt = ec.verify_envelope(
            answer.gateway_receipt,
            trust,
            expect_sender=ec.GATEWAY_ID,
            expect_body_type="egov.v1.AsyncReceipt",
            countersigned=False,
        )
        expect(receipt.header.service_id == "rshep.application.submit.v1", f"receipt service {receipt.header.service_id}")
        expect(receipt.header.correlation_id == app_id, f"receipt correlation {receipt.header.correlation_id}")
        expect(receipt.header.recipient_id == WORKSTATION, f"receipt to {receipt.header.recipient_id}")
        expect(receipt.body.message_id != "", "the receipt names no message")
        expect(len(receipt.body.digest) == 32, f"the receipt's digest is {len(receipt.body.digest)} bytes, not 32")
        return f"now at {application.current_step}; gateway receipt verified"

    def registered():
        deadline = time.monotonic() + REGISTRATION_PATIENCE_S
        while True:
            answer = workstation.GetApplication(pb_ws.GetApplicationRequest(application_id=app_id), timeout=RPC_TIMEOUT_S)
            if answer.application.registration_id:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"no registration after {REGISTRATION_PATIENCE_S}s; at {answer.application.current_step}")
            time.sleep(0.2)
        registration_id = answer.application.registration_id
        expect(any(r.step_id == "process-7" for r in answer.application.path), "process-7 is not in the path")
        got = regional.GetRegistration(pb_reg.GetRegistrationRequest(registration_id=registration_id), timeout=RPC_TIMEOUT_S)
        expect(got.registration.application.application_id == app_id, "the regional registration is another application's")
        return f"registration {registration_id}"

    if checks.run("operator-1 logs in (process 1)", login):
        if checks.run("OpenForm signed by operator-1: condition 1 passed", open_form):
            if checks.run("SubmitApplication signed by operator-1 (processes 5-6)", submit):
                checks.run(f"the regional gateway registered it within {REGISTRATION_PATIENCE_S}s (process 7)", registered)

    # c. As the workstation: a person look-up through the gateway.
    def lookup_envelope(iin: str, message_id: str | None = None, header: bytes | None = None):
        if header is None:
            header = ec.build_header(
                service_id="gbdfl.person.lookup.v1",
                sender_id=WORKSTATION,
                recipient_id="gbdfl",
                correlation_id=app_id,
                body_type="egov.v1.PersonQuery",
                message_id=message_id,
            )
        return ec.seal(workstation_key, header, pb_ind.PersonQuery(iin=iin).SerializeToString())

    def lookup():
        envelope = lookup_envelope(LOOKUP_IIN)
        answer = gateway.SendSync(pb_gw.SendSyncRequest(envelope=envelope), timeout=RPC_TIMEOUT_S).envelope
        verified = ec.verify_envelope(answer, trust, expect_sender="gbdfl", expect_body_type="egov.v1.PersonAnswer")
        request = pb_env.EnvelopeHeader.FromString(envelope.header)
        h = verified.header
        expect(h.recipient_id == WORKSTATION, f"answer is for {h.recipient_id}")
        expect(h.correlation_id == app_id, f"answer correlation {h.correlation_id}")
        expect(h.message_type == pb_env.MESSAGE_TYPE_RESPONSE, f"answer type {h.message_type}")
        expect(h.message_id != request.message_id, "the answer reuses the request's message id")
        expect(verified.countersigner_key.member_id == "egov-gateway", "not countersigned by the gateway")
        expect(verified.body.found, "PersonAnswer.found is false")
        expect(verified.body.person.iin == LOOKUP_IIN, f"person {verified.body.person.iin}")
        state["lookup"] = (envelope, answer)
        return (
            f"signed by gbdfl ({verified.sender_key.key_id}), countersigned by egov-gateway "
            f"({verified.countersigner_key.key_id}), found {verified.body.person.surname}"
        )

    checks.run("SendSync person look-up as sc-workstation: answer verified", lookup)

    # d. A tampered copy.
    def tampered():
        envelope = lookup_envelope(LOOKUP_IIN)
        body = bytearray(envelope.body)
        body[-1] ^= 0x01
        envelope.body = bytes(body)
        return expect_refusal(
            lambda: gateway.SendSync(pb_gw.SendSyncRequest(envelope=envelope), timeout=RPC_TIMEOUT_S),
            grpc.StatusCode.UNAUTHENTICATED,
            "envelope.bad_signature",
        )

    checks.run("a look-up with one body bit flipped is refused", tampered)

    # e. Idempotency and replay.
    def resend():
        expect("lookup" in state, "no look-up to resend")
        envelope, first = state["lookup"]
        again = gateway.SendSync(pb_gw.SendSyncRequest(envelope=envelope), timeout=RPC_TIMEOUT_S).envelope
        verified = ec.verify_envelope(again, trust, expect_sender="gbdfl", expect_body_type="egov.v1.PersonAnswer", freshness_ms=None)
        expect(again.body == first.body, "another answer body")
        expect(again.header == first.header, "another answer header")
        expect(again.SerializeToString() == first.SerializeToString(), "another answer envelope")
        return f"the same answer {verified.header.message_id}"

    def replay():
        expect("lookup" in state, "no look-up to replay")
        envelope, _ = state["lookup"]
        other = lookup_envelope(APPLICANT_IIN, header=envelope.header)  # same header, same message id, other body
        expect(other.body != envelope.body, "the bodies are the same")
        return expect_refusal(
            lambda: gateway.SendSync(pb_gw.SendSyncRequest(envelope=other), timeout=RPC_TIMEOUT_S),
            grpc.StatusCode.ALREADY_EXISTS,
            "envelope.replayed_message_id",
        )

    checks.run("the same look-up sent again gets the same answer", resend)
    checks.run("the same message id with another body is refused", replay)

    print(f"{checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
