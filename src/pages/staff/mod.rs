//! System users' pages: sign-in, sign-out and the password change (`sign_in`),
//! the admin's user management (`users`), and Your account (`account`).

pub mod account;
pub mod sign_in;
pub mod users;
