//! Events: the catalogue of what can happen — types, scopes, filters and
//! `NewEvent`. Recording one is intake's (`crate::intake`).

pub mod catalogue;
