//! Corrections for Hark: what a note should have said.
//!
//! A [`Corrector`] runs Harper's curated grammar rules over a transcript and returns [`Edit`]s:
//! sorted, non-overlapping replacements whose offsets count Unicode scalar values of the original
//! text. [`apply`] turns the text and its edits into the corrected text. Nothing here knows about
//! storage or HTTP.

mod edit;
mod grammar;

pub use edit::{Edit, apply};
pub use grammar::Corrector;
