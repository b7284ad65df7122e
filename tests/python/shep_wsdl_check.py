#!/usr/bin/env python3
"""Builds every operation's request of egov's SHEP WSDLs with zeep, a SOAP
library that generates its client from the WSDL, the way an integrator would.

    python3 tests/python/shep_wsdl_check.py --wsdl-dir crates/shep/wsdl --payload-xsd FILE

The WSDLs and their XSDs are loaded from files (no network). The business
payloads are built with zeep too, from the payload schema egov generates
(`egov_shep::payload::payload_xsd`, written to FILE by the caller): the sync
request carries its payload as one escaped string (`xsi:type="xs:string"`),
the async ones as a child element of `data`, the two shapes SHEP's clients use.

Prints one JSON object a line: {"wsdl", "operation", "case", "request"} with
the request's whole SOAP envelope; exits 1 (with the error on stderr) when
zeep cannot load a WSDL or build a request.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lxml import etree
import zeep
from zeep import xsd

SENDER = {"senderId": "sc-workstation", "password": "secret-password"}
DATE = "2026-06-02T10:00:00+05:00"
# A date without an offset, as C# and Python clients send it.
NAIVE_DATE = "2026-06-02T10:00:05"


class Payloads:
    """egov's payload types, from the generated payload XSD."""

    def __init__(self, path: Path) -> None:
        self.schema = xsd.Schema(etree.parse(str(path)).getroot())

    def element(self, name: str, **fields) -> etree._Element:
        """The payload `<name>` as zeep renders it from the schema."""
        element = self.schema.get_element(name)
        holder = etree.Element("holder")
        element.render(holder, element(**fields))
        (payload,) = list(holder)
        return payload

    def text(self, name: str, **fields) -> str:
        return etree.tostring(self.element(name, **fields), encoding="unicode")


def data_element(envelope: etree._Element) -> etree._Element:
    (data,) = envelope.iter("data")
    return data


def requests(wsdl_dir: Path, payloads: Payloads):
    """(wsdl, operation, case, envelope) for every operation."""
    sync = zeep.Client(str(wsdl_dir / "SyncChannel.wsdl"))
    query = payloads.text("PersonQuery", iin="900101300123")
    envelope = sync.create_message(
        sync.service,
        "SendMessage",
        request={
            "requestInfo": {
                "messageId": "6f1c2a4e-0d7b-4c55-9a57-3f0f0b2d9e11",
                "serviceId": "GBL_FL",
                "messageDate": DATE,
                "sender": SENDER,
                "properties": [{"key": "lang", "value": "kk"}],
                # Unbraced, as production clients send it.
                "sessionId": "0b7e4c1a-5f6d-4e2b-8c9a-1d2e3f4a5b6c",
            },
            "requestData": {"data": xsd.AnyObject(xsd.String(), query)},
        },
    )
    yield "SyncChannel.wsdl", "SendMessage", "person query as an escaped string", envelope

    channel = zeep.Client(str(wsdl_dir / "AsyncChannel.wsdl"))
    delivery = payloads.element(
        "ApplicationDelivery",
        applicationId="A-2026-0001",
        serviceCode="sc.permit",
        representative={"iin": "850715300122", "kind": "NOTARISED", "powerOfAttorneyNumber": "NP-1"},
        operatorSubmission={
            "signedBy": "operator-1",
            "ApplicationSubmission": {
                "applicationId": "A-2026-0001",
                "documents": [
                    {"kind": "application-form", "title": "Заявление", "pages": 1, "content": b"%PDF-1.7 scan"},
                    {"kind": "identity", "pages": 2},
                ],
            },
        },
    )
    info = {
        "serviceId": "RSHEP_APPLICATION",
        "messageType": "REQUEST",
        "messageDate": NAIVE_DATE,
        "sender": SENDER,
    }
    envelope = channel.create_message(
        channel.service, "sendMessage", request={"messageInfo": info, "messageData": {"data": ""}}
    )
    data_element(envelope).append(delivery)
    yield "AsyncChannel.wsdl", "sendMessage", "application as a child element", envelope

    progress = payloads.element(
        "ApplicationProgress",
        applicationId="A-2026-0001",
        registrationId="R-7",
        path=[{"stepId": "process-7", "startedTimeMs": 1780000000000}],
        sequence=1,
    )
    info = dict(info, messageType="NOTIFICATION", correlationId="A-2026-0001", messageId="client-7")
    envelope = channel.create_message(
        channel.service, "sendMessage", request={"messageInfo": info, "messageData": {"data": ""}}
    )
    data_element(envelope).append(progress)
    yield "AsyncChannel.wsdl", "sendMessage", "progress notification on the chain", envelope

    envelope = channel.create_message(
        channel.service,
        "getMessages",
        request={"requestDate": DATE, "serviceId": "RSHEP_APPLICATION", "sender": SENDER, "amount": 5},
    )
    yield "AsyncChannel.wsdl", "getMessages", "poll", envelope

    envelope = channel.create_message(
        channel.service,
        "getMessageStatus",
        request={"messageId": "m-1", "requestDate": DATE, "sender": SENDER},
    )
    yield "AsyncChannel.wsdl", "getMessageStatus", "status", envelope

    envelope = channel.create_message(
        channel.service,
        "sendDeliveryNotification",
        request={
            "notification": {
                "messageId": "m-1",
                "serviceId": "RSHEP_APPLICATION",
                "notificationDate": DATE,
                "deliveryStatus": {
                    "receiveStatus": "MESSAGE_NOT_ACCTEPTED",
                    "statusDate": DATE,
                    "resendMessage": "RESEND",
                    "error": {
                        "errorCode": "SCE001",
                        "errorMessage": "format",
                        "errorDate": DATE,
                        "subError": {"errorCode": "X", "errorMessage": "inner", "errorDate": DATE},
                    },
                },
            },
            "requestDate": DATE,
            "sender": SENDER,
        },
    )
    yield "AsyncChannel.wsdl", "sendDeliveryNotification", "not accepted, resend", envelope

    client = zeep.Client(str(wsdl_dir / "AsyncChannelClient.wsdl"))
    envelope = client.create_message(
        client.service,
        "sendMessage",
        request={
            "messageInfo": dict(info, messageType="REQUEST", sessionId="{0B7E4C1A-5F6D-4E2B-8C9A-1D2E3F4A5B6C}"),
            "messageData": {"data": xsd.AnyObject(xsd.String(), query)},
        },
    )
    yield "AsyncChannelClient.wsdl", "sendMessage", "push to a recipient", envelope

    envelope = client.create_message(
        client.service,
        "changeMassageStatusNotification",
        request={
            "notification": {
                "notificationId": "n-1",
                "messageId": "m-1",
                "notificationDate": DATE,
                "messageState": "DELIVERED",
                "status": {"statusCode": "DELIVERED", "statusMessage": "delivered", "statusDate": DATE},
            },
            "requestDate": DATE,
        },
    )
    yield "AsyncChannelClient.wsdl", "changeMassageStatusNotification", "state changed", envelope


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wsdl-dir", type=Path, required=True)
    parser.add_argument("--payload-xsd", type=Path, required=True)
    arguments = parser.parse_args()
    payloads = Payloads(arguments.payload_xsd)
    for wsdl, operation, case, envelope in requests(arguments.wsdl_dir, payloads):
        request = etree.tostring(envelope, encoding="unicode")
        print(json.dumps({"wsdl": wsdl, "operation": operation, "case": case, "request": request}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
