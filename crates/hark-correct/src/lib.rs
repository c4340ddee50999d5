//! Corrections for Hark: what a note should have said, and how its audio says it more cleanly.
//!
//! Two independent halves, neither of which knows about storage or HTTP:
//!
//! - **Text.** A [`Corrector`] runs Harper's curated grammar rules over a transcript and returns
//!   [`Edit`]s: sorted, non-overlapping replacements whose offsets count Unicode scalar values of
//!   the original text. [`apply`] turns the text and its edits into the corrected text.
//! - **Audio.** [`keep_spans`] reads the transcript's word timings and decides which stretches of
//!   the recording to keep: fillers (um, uh, ...) and stuttered repeats go, long pauses shrink,
//!   and every cut falls between words. A [`Splicer`] then joins the kept stretches block by block
//!   as the audio is decoded, with a short raised-cosine fade at each cut so no click is heard;
//!   [`splice`] does the same for audio already in memory.

mod cuts;
mod edit;
mod grammar;
mod splice;

pub use cuts::{TimedWord, keep_spans};
pub use edit::{Edit, apply};
pub use grammar::Corrector;
pub use splice::{Splicer, splice};
