//! Prepared messages' pages: the list, the editor with its preview and test sends
//! (`editor`), and the one-click unsubscribe that every sent message links to.

pub mod editor;
pub mod preview;
pub mod system;
pub mod tracked;
pub mod unsubscribe;
