//! The contact pages: the list with its search, a contact's page and forms
//! (`people`), the editor's contact picker (`picker`), and the CSV import's upload and progress (`import`).

pub mod import;
pub mod people;
pub mod picker;
