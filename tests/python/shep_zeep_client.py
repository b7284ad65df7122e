"""A SOAP client generated at run time by zeep from the WSDLs a running egov
serves (docs/shep.md), as an integrator's State Corporation system would be:
the sync look-up, then the application and its reports polled back.

    shep_zeep_client.py submit BASE SENDER PASSWORD APPLICATION_ID IIN
        a sync look-up of IIN (SCSS001, found), the application sent with
        sendMessage (REQUEST), its first report polled with getMessages and
        acknowledged, getMessageStatus of the application DELIVERED; prints
        `registration REGISTRATION_ID`.
    shep_zeep_client.py result BASE SENDER PASSWORD APPLICATION_ID
        polls the reports, acknowledging each, until the RESPONSE with the
        head's signed result; prints `result OUTCOME SIGNED_BY`.

Each check that fails raises; the exit code is then 1.
"""

import base64
import datetime
import hashlib
import re
import sys
import time
import uuid

import zeep
from zeep import xsd

SYNC = "/bip-sync-wss-gost/"
ASYNC = "/bip-async/"


def now():
    return datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=5)))


def escaped(value):
    """A payload sent as one escaped string, as many SHEP clients send it."""
    return xsd.AnyObject(xsd.String(), value)


def text(xml, name):
    found = re.search(rf"<{name}>([^<]*)</{name}>", xml)
    return found.group(1) if found else None


def payload_text(data):
    """The payload of a delivered message, as XML text, whatever shape zeep gave it."""
    from lxml import etree

    if data is None:
        return ""
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return "".join(etree.tostring(item, encoding="unicode") for item in data)
    if hasattr(data, "tag"):
        return etree.tostring(data, encoding="unicode")
    return str(data)


def application(application_id, iin):
    documents = ""
    for kind in ["application-form", "identity-document"]:
        content = f"scan of {kind}".encode()
        documents += (
            f"<documents><kind>{kind}</kind><title>{kind}</title><pages>1</pages>"
            f"<sha256>{hashlib.sha256(content).hexdigest()}</sha256>"
            f"<content>{base64.b64encode(content).decode()}</content></documents>"
        )
    return (
        f"<ApplicationDelivery><applicationId>{application_id}</applicationId><serviceCode>svc</serviceCode>"
        f"<applicant><iin>{iin}</iin></applicant>"
        f'<operatorSubmission signedBy="operator-1"><ApplicationSubmission><sessionId>zeep</sessionId>'
        f"<applicationId>{application_id}</applicationId>{documents}</ApplicationSubmission></operatorSubmission>"
        f"</ApplicationDelivery>"
    )


class Shep:
    def __init__(self, base, sender, password):
        self.sender = {"senderId": sender, "password": password}
        self.sync = zeep.Client(base + SYNC + "?wsdl")
        self.channel = zeep.Client(base + ASYNC + "?wsdl")

    def look_up(self, iin):
        answer = self.sync.service.SendMessage(
            request={
                "requestInfo": {
                    "messageId": str(uuid.uuid4()),
                    "serviceId": "GBDFL_PERSON_BY_IIN",
                    "messageDate": now(),
                    "sender": self.sender,
                },
                "requestData": {"data": escaped(f"<PersonQuery><iin>{iin}</iin></PersonQuery>")},
            }
        )
        info = answer.responseInfo
        assert info.status.code == "SCSS001", info
        data = payload_text(answer.responseData.data)
        assert text(data, "found") == "true", data
        return data

    def send(self, application_id, iin):
        answer = self.channel.service.sendMessage(
            request={
                "messageInfo": {
                    "messageId": str(uuid.uuid4()),
                    "serviceId": "RSHEP_APPLICATION_SUBMIT",
                    "messageType": "REQUEST",
                    "messageDate": now(),
                    "sender": self.sender,
                },
                "messageData": {"data": escaped(application(application_id, iin))},
            }
        )
        assert answer.correlationId == application_id, answer
        return answer.messageId

    def reports(self):
        answer = self.channel.service.getMessages(
            request={"requestDate": now(), "serviceId": "SC_APPLICATION_PROGRESS", "sender": self.sender}
        )
        return list(answer.messages or [])

    def acknowledge(self, message_id):
        answer = self.channel.service.sendDeliveryNotification(
            request={
                "notification": {
                    "messageId": message_id,
                    "serviceId": "SC_APPLICATION_PROGRESS",
                    "notificationDate": now(),
                    "deliveryStatus": {
                        "receiveStatus": "MESSAGE_ACCEPTED",
                        "statusDate": now(),
                        "resendMessage": "NOT_RESEND",
                    },
                },
                "requestDate": now(),
                "sender": self.sender,
            }
        )
        assert answer.notificationId, answer

    def state(self, message_id):
        answer = self.channel.service.getMessageStatus(
            request={"messageId": message_id, "requestDate": now(), "sender": self.sender}
        )
        return answer.messageState


def until(what, probe, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def submit(shep, application_id, iin):
    person = shep.look_up(iin)
    print("looked up", text(person, "surname"), flush=True)
    message_id = shep.send(application_id, iin)
    first = until("the ARM's first report", lambda: shep.reports())[0]
    assert first.messageInfo.correlationId == application_id, first.messageInfo
    assert first.messageInfo.messageType == "NOTIFICATION", first.messageInfo
    registration = text(payload_text(first.messageData.data), "registrationId")
    assert registration, first
    shep.acknowledge(first.messageInfo.messageId)
    assert until("DELIVERED", lambda: shep.state(message_id) == "DELIVERED")
    print("registration", registration, flush=True)


def result(shep, application_id):
    def poll():
        for message in shep.reports():
            shep.acknowledge(message.messageInfo.messageId)
            assert message.messageInfo.correlationId == application_id, message.messageInfo
            if message.messageInfo.messageType == "RESPONSE":
                return payload_text(message.messageData.data)
        return None

    data = until("the result", poll)
    signed_by = re.search(r'signedBy="([^"]+)"', data)
    print("result", text(data, "outcome"), signed_by.group(1) if signed_by else "-", flush=True)


def main():
    mode, base, sender, password, application_id = sys.argv[1:6]
    shep = Shep(base, sender, password)
    if mode == "submit":
        submit(shep, application_id, sys.argv[6])
    else:
        result(shep, application_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
