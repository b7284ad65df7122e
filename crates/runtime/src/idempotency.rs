//! Idempotent receivers: a resend of a message (same sender, same id, same
//! header and body bytes) gets the stored answer; the same id with other
//! bytes is refused.

use egov_envelope::{Verified, sender_signed_bytes};
use egov_proto::Envelope;
use egov_store::Store;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::Refusal;

/// What a resend is recognised by: SHA-256 of the sender's signed bytes.
pub fn digest(envelope: &Envelope) -> Vec<u8> {
    Sha256::digest(sender_signed_bytes(&envelope.header, &envelope.body)).to_vec()
}

/// The answer stored for a message seen before (`None` for a new one), or a
/// refusal when its id was used before for other bytes.
pub fn stored_answer(store: &Store, verified: &Verified, envelope: &Envelope) -> Result<Option<Vec<u8>>, Refusal> {
    let header = &verified.header;
    let Some(remembered) = store.remembered(&header.sender_id, &header.message_id)? else {
        return Ok(None);
    };
    if remembered.digest != digest(envelope) {
        return Err(Refusal::new(
            Code::AlreadyExists,
            "envelope.replayed_message_id",
            format!("message id {} was already used by {} for other bytes", header.message_id, header.sender_id),
        ));
    }
    tracing::info!("resend of a message already processed: answering as before");
    Ok(Some(remembered.response))
}

/// A stored answer decoded as the call's response type.
pub fn decode_answer<M: Message + Default>(bytes: &[u8]) -> Result<M, Refusal> {
    M::decode(bytes)
        .map_err(|e| Refusal::new(Code::DataLoss, "store.corrupt", format!("stored answer does not decode: {e}")))
}

/// The answer remembered for `(sender, message_id)`, decoded as the call's response type.
pub fn answer_of<M: Message + Default>(store: &Store, sender_id: &str, message_id: &str) -> Result<Option<M>, Refusal> {
    store.remembered(sender_id, message_id)?.map(|remembered| decode_answer(&remembered.response)).transpose()
}

/// The stored answer to a resend, decoded as the call's response type.
pub fn resent<M: Message + Default>(
    store: &Store,
    verified: &Verified,
    envelope: &Envelope,
) -> Result<Option<M>, Refusal> {
    stored_answer(store, verified, envelope)?.map(|bytes| decode_answer(&bytes)).transpose()
}
