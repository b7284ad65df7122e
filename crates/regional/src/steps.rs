//! The steps of the definition the ARM does or follows, bound by their
//! effect once, when the ARM starts.

use egov_regulation::definition::Channel;
use egov_regulation::{Definition, DefinitionError, Effect, Step};

const PARTICIPANT: &str = "regional gateway ARM";

#[derive(Debug)]
pub(crate) struct Steps {
    /// Process 5, whose signature the ARM checks on the operator's submission.
    pub(crate) sign_submission: Step,
    /// Process 7.
    pub(crate) register: Step,
    /// Action 2.
    pub(crate) draft_result: Step,
    /// Action 3.
    pub(crate) sign_result: Step,
    /// Action 4.
    pub(crate) send_result: Step,
    /// Condition 2, whose deciding official signs process 8's refusal.
    pub(crate) check_documents: Step,
    /// Process 8, where the definition has it.
    pub(crate) refusal_notice: Option<Step>,
    /// The channel that receives applications at the provider's office: the
    /// one that starts at a step of the provider's staff (paragraph 3).
    pub(crate) office_channel: Option<Channel>,
}

impl Steps {
    pub(crate) fn bind(definition: &Definition) -> Result<Steps, DefinitionError> {
        Ok(Steps {
            // Condition 2 is required; the staff name it by id, with the grounds the definition ties to it.
            check_documents: definition.bind(Effect::CheckDocuments, PARTICIPANT)?,
            refusal_notice: definition.step_by_effect(Effect::RefusalNotice).cloned(),
            sign_submission: definition.bind(Effect::SignSubmission, PARTICIPANT)?,
            register: definition.bind(Effect::Register, PARTICIPANT)?,
            draft_result: definition.bind(Effect::DraftResult, PARTICIPANT)?,
            sign_result: definition.bind(Effect::SignResult, PARTICIPANT)?,
            send_result: definition.bind(Effect::SendResult, PARTICIPANT)?,
            office_channel: definition
                .channels
                .iter()
                .find(|channel| {
                    definition
                        .step(&channel.start)
                        .is_some_and(|step| egov_runtime::ids::roles::PROVIDER_STAFF.contains(&step.actor.as_str()))
                })
                .cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_without_a_step_the_arm_needs_is_refused_naming_it() {
        assert!(Steps::bind(Definition::default_definition()).is_ok());
        let text = egov_regulation::definition::DEFAULT_DEFINITION.replace("effect = \"draft-result\"\n", "");
        let definition = Definition::from_toml(&text).unwrap();
        let error = Steps::bind(&definition).unwrap_err();
        assert!(error.to_string().contains("draft-result") && error.to_string().contains("ARM"), "{error}");
        assert!(error.line > 0, "{error}");
    }
}
