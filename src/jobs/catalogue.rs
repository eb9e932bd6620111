//! The product's jobs: one line per job. A job registered only for tests or
//! benchmarks is added to this registry by the program that needs it
//! (`Registry::with`), never here.

use crate::jobs::end_reminder::EndReminder;
use crate::jobs::group_membership::{Subscribe, Unsubscribe};
use crate::jobs::import_contacts::ImportContacts;
use crate::jobs::registry::Registry;
use crate::jobs::send_message::{ToAddress, ToContact as MessageToContact};
use crate::jobs::send_new_password::{ToContact, ToSystemUser};
use crate::jobs::update_attribute::UpdateAttribute;

/// Every job Herald offers.
pub fn standard() -> Registry {
    Registry::default()
        .with(ToContact)
        .with(ToSystemUser)
        .with(MessageToContact)
        .with(ToAddress)
        .with(Subscribe)
        .with(Unsubscribe)
        .with(UpdateAttribute)
        .with(EndReminder)
        .with(ImportContacts)
}
