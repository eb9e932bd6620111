//! The public preference center (README, What works today): contacts sign in with their password or
//! an emailed temporary one, choose their own password, change their message
//! preferences (the groups visible here) and their name. Its own session cookie
//! (`herald_preferences`, path `/preferences`); nothing of the admin UI.

mod choices;
mod confirm;
mod my_data;
mod password;
mod session;
mod sign_in;
mod signup;

pub use session::*;
