#!/usr/bin/env python3
"""An external regional ARM (rshep-astana) that egov's SHEP edge pushes to.

Written from docs/shep.md only, with the standard library's http.server and
lxml, as a second SOAP implementation beside the edge's own:

- it serves the push endpoint: each pushed async ``sendMessage`` is parsed
  namespace-aware (``sendMessage`` in the AsyncChannel types namespace, its
  children unqualified) and answered ``sendMessageResponse``; a request it
  cannot read gets a SOAP fault with an ``errorCode``;
- for each application received (``RSHEP_APPLICATION_SUBMIT``, a ``REQUEST``
  whose ``ApplicationDelivery`` carries the operator's submission), once per
  chain, it reports back on the chain to egov's ``/bip-async/`` as the
  sender given: the registration and the staff's progress as
  ``NOTIFICATION``s, then the head's result as a ``RESPONSE`` with the result
  carried ``signedBy="head-1"`` for the edge to sign (docs/shep.md, "Payloads").

Usage: shep_push_arm.py --edge http://HOST:PORT/bip-async/ --sender rshep-astana
       --password-file keys/secrets/shep-rshep-astana.password [--port 0]

It prints ``listening http://127.0.0.1:PORT/arm`` once it serves, then
``received CHAIN`` for each application and ``reported CHAIN`` once the
result is on the chain (``failed CHAIN: WHY`` when egov refused a report).
"""

import argparse
import datetime
import http.server
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
ASYNC = "http://bip.bee.kz/AsyncChannel/v10/Types"
SUBMIT = "RSHEP_APPLICATION_SUBMIT"
PROGRESS = "SC_APPLICATION_PROGRESS"
HEAD = "head-1"
PROVIDER = "rshep-astana"
# How long a report may keep failing to reach egov before the ARM gives up on it.
PATIENCE_SECONDS = 60.0


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def now_ms():
    return int(time.time() * 1000)


def child(parent, name, text=None, **attributes):
    """An unqualified child element, with its text."""
    element = etree.SubElement(parent, name, **attributes)
    if text is not None:
        element.text = str(text)
    return element


def envelope(build_body):
    """A SOAP 1.1 envelope whose Body ``build_body`` fills: its bytes."""
    root = etree.Element(etree.QName(SOAP, "Envelope"), nsmap={"soapenv": SOAP})
    body = etree.SubElement(root, etree.QName(SOAP, "Body"))
    build_body(body)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def fault(code, message):
    def build(body):
        fault_element = etree.SubElement(body, etree.QName(SOAP, "Fault"))
        child(fault_element, "faultcode", "soapenv:Client")
        child(fault_element, "faultstring", message)
        detail = child(fault_element, "detail")
        info = etree.SubElement(detail, etree.QName(ASYNC, "sendMessageFault1_sendMessageFault"), nsmap={"ns": ASYNC})
        child(info, "errorCode", code)
        child(info, "errorMessage", message)
        child(info, "errorDate", now())

    return envelope(build)


def accepted(correlation_id):
    def build(body):
        answer = etree.SubElement(body, etree.QName(ASYNC, "sendMessageResponse"), nsmap={"ns": ASYNC})
        response = child(answer, "response")
        child(response, "messageId", uuid.uuid4())
        child(response, "correlationId", correlation_id)
        child(response, "responseDate", now())

    return envelope(build)


class Unreadable(Exception):
    """A pushed request the ARM cannot read: answered with a fault."""


def parser():
    # No DTDs, no entities, no network: what a SOAP endpoint should accept.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def text_of(parent, path):
    found = parent.find(path)
    if found is None or found.text is None or not found.text.strip():
        raise Unreadable(f"no {path} in {parent.tag}")
    return found.text.strip()


def read_push(data):
    """The pushed sendMessage: a dict of what the ARM needs from it."""
    try:
        root = etree.fromstring(data, parser())
    except etree.XMLSyntaxError as error:
        raise Unreadable(f"not well-formed: {error}") from error
    if root.tag != etree.QName(SOAP, "Envelope").text:
        raise Unreadable(f"not a SOAP 1.1 envelope: {root.tag}")
    send = root.find(f"{{{SOAP}}}Body/{{{ASYNC}}}sendMessage")
    if send is None:
        raise Unreadable("the Body holds no AsyncChannel sendMessage")
    info = send.find("request/messageInfo")
    if info is None:
        raise Unreadable("no request/messageInfo")
    message = {
        "messageId": text_of(info, "messageId"),
        "correlationId": text_of(info, "correlationId"),
        "serviceId": text_of(info, "serviceId"),
        "messageType": text_of(info, "messageType"),
        "sender": text_of(info, "sender/senderId"),
    }
    if message["serviceId"] != SUBMIT or message["messageType"] != "REQUEST":
        raise Unreadable(f"this ARM takes {SUBMIT} REQUESTs, not {message['serviceId']} {message['messageType']}")
    delivery = send.find("request/messageData/data/ApplicationDelivery")
    if delivery is None:
        raise Unreadable("the data holds no ApplicationDelivery")
    message["applicationId"] = text_of(delivery, "applicationId")
    message["iin"] = text_of(delivery, "applicant/iin")
    message["serviceCode"] = text_of(delivery, "serviceCode")
    submission = delivery.find("operatorSubmission")
    if submission is None or not submission.get("signedBy"):
        raise Unreadable("the application carries no signed operatorSubmission")
    # As delivered, the carried submission comes with its envelope's bytes for the EDS check.
    text_of(submission, "envelope")
    message["operator"] = submission.get("signedBy")
    if message["correlationId"] != message["applicationId"]:
        raise Unreadable(f"the chain {message['correlationId']} is not the application {message['applicationId']}")
    return message


def report(sender, password, message_type, chain, progress):
    """A sendMessage on ``chain`` from the ARM's sender, carrying ``progress``."""

    def build(body):
        send = etree.SubElement(body, etree.QName(ASYNC, "sendMessage"), nsmap={"ns": ASYNC})
        request = child(send, "request")
        info = child(request, "messageInfo")
        child(info, "messageId", uuid.uuid4())
        child(info, "correlationId", chain)
        child(info, "serviceId", PROGRESS)
        child(info, "messageType", message_type)
        child(info, "messageDate", now())
        who = child(info, "sender")
        child(who, "senderId", sender)
        child(who, "password", password)
        data = child(child(request, "messageData"), "data")
        data.append(progress)

    return envelope(build)


def step(step_id, actor, actor_id, branch=None, handed_over=None):
    """One step of the path as done now (``handed_over``: the role and member who handed it over)."""
    at = now_ms()
    record = {"stepId": step_id, "actor": actor, "actorId": actor_id, "startedTimeMs": at, "endedTimeMs": at}
    if branch:
        record["branch"] = branch
    if handed_over:
        record["handedOverByRole"], record["handedOverBy"] = handed_over
    return record


def progress(application, registration_id, steps, sequence, result=False):
    """The ARM's ApplicationProgress: the path so far, and the head's result when ``result``."""
    root = etree.Element("ApplicationProgress")
    child(root, "applicationId", application["applicationId"])
    child(root, "registrationId", registration_id)
    for step in steps:
        path = child(root, "path")
        for name in ("stepId", "actor", "actorId", "startedTimeMs", "endedTimeMs", "branch"):
            if step.get(name):
                child(path, name, step[name])
        if step.get("handedOverBy"):
            child(path, "handedOverByRole", step["handedOverByRole"])
            child(path, "handedOverBy", step["handedOverBy"])
            child(path, "handedOverTimeMs", step["startedTimeMs"])
    if result:
        signed = child(root, "signedResult", signedBy=HEAD)
        service_result = child(signed, "ServiceResult")
        child(service_result, "applicationId", application["applicationId"])
        child(service_result, "registrationId", registration_id)
        child(service_result, "serviceCode", application["serviceCode"])
        child(service_result, "applicantIin", application["iin"])
        child(service_result, "outcome", "permitted")
        child(service_result, "decidedTimeMs", now_ms())
        child(service_result, "provider", PROVIDER)
    child(root, "sequence", sequence)
    return root


def post(url, body):
    """POSTs a SOAP request: the HTTP status and the parsed answer."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, etree.fromstring(answer.read(), parser())
    except urllib.error.HTTPError as error:
        return error.code, etree.fromstring(error.read(), parser())


def send_report(url, body, chain):
    """Sends one report until egov takes it: a fault is final, a connection error is retried."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            status, answer = post(url, body)
        except (urllib.error.URLError, OSError) as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"egov cannot be reached: {error}") from error
            time.sleep(0.5)
            continue
        if status != 200:
            code = answer.findtext(".//errorCode") or "?"
            raise RuntimeError(f"HTTP {status}, errorCode {code}")
        named = answer.findtext(f"{{{SOAP}}}Body/{{{ASYNC}}}sendMessageResponse/response/correlationId")
        if named != chain:
            raise RuntimeError(f"the answer names chain {named!r}, not {chain!r}")
        return


def reporter(args, password, applications):
    """The ARM's staff, one application after another: each on its chain."""
    while True:
        application = applications.get()
        chain = application["correlationId"]
        registration_id = f"PY-{application['applicationId']}"
        # The provider's part of the regulation's path, each step by its role's
        # member: the registration at once, then the staff's steps as they do them.
        path = [
            step("process-7", "regional-arm", PROVIDER),
            step("action-1", "provider-office", "office-1"),
            step("condition-2", "provider-specialist", "specialist-1", branch="yes"),
            step("action-2", "provider-executor", "executor-1", branch="yes"),
            step("action-3", "provider-head", HEAD, handed_over=("provider-executor", "executor-1")),
            step("action-4", "provider-office", "office-1"),
        ]
        reports = [
            ("NOTIFICATION", progress(application, registration_id, path[:1], 1)),
            ("NOTIFICATION", progress(application, registration_id, path[:4], 4)),
            ("RESPONSE", progress(application, registration_id, path, 6, result=True)),
        ]
        try:
            for message_type, payload in reports:
                send_report(args.edge, report(args.sender, password, message_type, chain, payload), chain)
            print(f"reported {chain}", flush=True)
        except Exception as error:  # noqa: BLE001 - said, and the next application goes on
            print(f"failed {chain}: {error}", flush=True)


def handler_for(applications, seen, lock):
    class Push(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            try:
                message = read_push(data)
            except Unreadable as error:
                print(f"refused a push: {error}", file=sys.stderr, flush=True)
                self.answer(500, fault("SCE002", str(error)))
                return
            chain = message["correlationId"]
            with lock:
                first = chain not in seen
                seen.add(chain)
            if first:
                print(f"received {chain}", flush=True)
                applications.put(message)
            self.answer(200, accepted(chain))

        def log_message(self, format, *args):  # noqa: A002 - http.server's signature
            pass

    return Push


def main():
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--edge", required=True, help="egov's async endpoint, http://HOST:PORT/bip-async/")
    arguments.add_argument("--sender", default="rshep-astana")
    arguments.add_argument("--password-file", required=True)
    arguments.add_argument("--port", type=int, default=0)
    args = arguments.parse_args()
    with open(args.password_file, encoding="utf-8") as file:
        password = file.read().strip()
    applications = queue.Queue()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", args.port), handler_for(applications, set(), threading.Lock())
    )
    threading.Thread(target=reporter, args=(args, password, applications), daemon=True).start()
    print(f"listening http://127.0.0.1:{server.server_address[1]}/arm", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
