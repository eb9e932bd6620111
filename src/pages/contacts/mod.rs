//! The contact pages: the list with its search, a contact's page and forms
//! (`people`), staff changing a contact's groups (`memberships`), the editor's contact
//! picker (`picker`), and the CSV import's upload and progress (`import`).

pub mod import;
mod memberships;
pub mod people;
pub mod picker;
