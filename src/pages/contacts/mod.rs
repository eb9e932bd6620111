//! The contact pages: the list with its search, a contact's page and forms
//! (`people`), and the CSV import's upload and progress (`import`).

pub mod import;
pub mod people;
