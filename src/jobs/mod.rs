//! Jobs: the [`registry::Job`] trait and the registry, the steps jobs share, and one
//! file per job. Adding a job is one file implementing the trait, its Define Job
//! partial in `templates/automations/jobs/`, one line in `catalogue::standard`, and
//! its tests.

pub mod add_to_blacklist;
pub mod catalogue;
pub mod common;
pub mod deactivate_contact;
pub mod end_reminder;
pub mod group_membership;
pub mod import_contacts;
pub mod registry;
pub mod send_http_request;
pub mod send_message;
pub mod send_new_password;
pub mod update_attribute;
