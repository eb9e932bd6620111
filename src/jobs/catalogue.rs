//! The product's jobs: one line per job. A job registered only for tests or
//! benchmarks is added to this registry by the program that needs it
//! (`Registry::with`), never here.

use crate::jobs::add_to_blacklist::AddToBlacklist;
use crate::jobs::deactivate_contact::DeactivateContact;
use crate::jobs::end_reminder::EndReminder;
use crate::jobs::group_membership::{SUBSCRIBE, UNSUBSCRIBE};
use crate::jobs::import_contacts::ImportContacts;
use crate::jobs::registry::Registry;
use crate::jobs::send_http_request::SendHttpRequest;
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
        .with(SUBSCRIBE)
        .with(UNSUBSCRIBE)
        .with(UpdateAttribute)
        .with(AddToBlacklist)
        .with(DeactivateContact)
        .with(SendHttpRequest)
        .with(EndReminder)
        .with(ImportContacts)
}
