//! Word timings from cross-attention, as OpenAI's `timing.py` finds them: the decoder reads the
//! window's text once more; the attention of its alignment heads over the audio frames,
//! normalised and median-filtered, is the cost matrix of a dynamic time warping between tokens
//! and frames. Where the path moves to a word's first token, the word starts.

use crate::model::Model;
use crate::network::{AudioContext, TokenCache};
use candle_core::Result;

/// Encoder frames per second (each covers two mel frames).
const FRAMES_PER_SECOND: f64 = 50.0;
const MEDIAN_FILTER_WIDTH: usize = 7;
/// Marks that join the word after them, and the word before them.
const PREPEND_PUNCTUATION: &str = "\"'“¿([{-";
const APPEND_PUNCTUATION: &str = "\"'.。,，!！?？:：”)]}、";

/// One word of a window, in seconds from the window's start.
#[derive(Clone, Debug)]
pub(crate) struct WordTiming {
    pub word: String,
    /// How many text tokens the word spans.
    pub tokens: usize,
    pub start: f64,
    pub end: f64,
    pub probability: f64,
}

/// Aligns a window's text tokens with its audio. `probabilities` are the tokens' probabilities
/// when decoded; `frames` the window's mel frames that hold audio; `spaced` whether the
/// language separates words with spaces.
pub(crate) fn align(
    model: &Model,
    audio: &AudioContext,
    sot_sequence: &[u32],
    text_tokens: &[u32],
    probabilities: &[f64],
    frames: usize,
    spaced: bool,
) -> Result<Vec<WordTiming>> {
    if text_tokens.is_empty() {
        return Ok(Vec::new());
    }
    let tokens = &model.tokens;
    let mut sequence = sot_sequence.to_vec();
    sequence.push(tokens.no_timestamps);
    sequence.extend(text_tokens);
    sequence.push(tokens.eot);
    let (_, scores) = model.network.decoder.forward(
        &sequence,
        &mut TokenCache::default(),
        audio,
        &model.alignment_heads,
    )?;
    let columns = (frames / 2).clamp(1, scores[0].dim(1)?);
    let rows = sequence.len();
    let mut matrix = vec![0f32; rows * columns];
    for head in &scores {
        let weights = crate::softmax::softmax_last_dim(&head.narrow(1, 0, columns)?)?;
        let mut weights: Vec<f32> = weights.flatten_all()?.to_vec1()?;
        standardize_columns(&mut weights, rows, columns);
        median_filter_rows(&mut weights, columns, MEDIAN_FILTER_WIDTH);
        for (m, w) in matrix.iter_mut().zip(&weights) {
            *m += w / scores.len() as f32;
        }
    }
    // The rows that predict the text tokens and the end: from `<|notimestamps|>` on.
    let first = sot_sequence.len();
    let text_rows = &matrix[first * columns..(rows - 1) * columns];
    let cost: Vec<f32> = text_rows.iter().map(|v| -v).collect();
    let path = dtw(&cost, rows - 1 - first, columns);

    // The frame where the path first reaches each row.
    let mut row_start = vec![0f64; rows - 1 - first];
    let mut previous = None;
    for &(row, column) in &path {
        if previous != Some(row) {
            row_start[row] = column as f64 / FRAMES_PER_SECOND;
            previous = Some(row);
        }
    }
    let words = tokens.split_words(text_tokens, spaced);
    let mut timings = Vec::with_capacity(words.len());
    let mut boundary = 0;
    for (word, word_tokens) in words {
        let end_boundary = boundary + word_tokens.len();
        let probability =
            probabilities[boundary..end_boundary].iter().sum::<f64>() / word_tokens.len() as f64;
        timings.push(WordTiming {
            word,
            tokens: word_tokens.len(),
            start: row_start[boundary],
            end: row_start[end_boundary],
            probability,
        });
        boundary = end_boundary;
    }
    Ok(timings)
}

/// Each column standardised over the rows (zero mean, unit variance).
fn standardize_columns(values: &mut [f32], rows: usize, columns: usize) {
    for c in 0..columns {
        let column = || (0..rows).map(|r| values[r * columns + c]);
        let mean = column().sum::<f32>() / rows as f32;
        let variance = column().map(|v| (v - mean).powi(2)).sum::<f32>() / rows as f32;
        let std = variance.sqrt().max(f32::EPSILON);
        for r in 0..rows {
            values[r * columns + c] = (values[r * columns + c] - mean) / std;
        }
    }
}

/// A running median along each row, the edges reflected (as OpenAI's `median_filter`).
fn median_filter_rows(values: &mut [f32], columns: usize, width: usize) {
    let pad = width / 2;
    if columns <= pad {
        return;
    }
    let reflect = |i: isize| -> usize {
        let last = columns as isize - 1;
        let i = if i < 0 { -i } else { i };
        (if i > last { 2 * last - i } else { i }) as usize
    };
    let mut window = Vec::with_capacity(width);
    for row in values.chunks_mut(columns) {
        let source = row.to_vec();
        for (c, out) in row.iter_mut().enumerate() {
            window.clear();
            window.extend(
                (0..width).map(|k| source[reflect(c as isize + k as isize - pad as isize)]),
            );
            window.sort_unstable_by(f32::total_cmp);
            *out = window[pad];
        }
    }
}

/// Dynamic time warping over a (rows, columns) cost matrix: the cheapest path from the first
/// cell to the last moving down, right or diagonally, as (row, column) pairs in order.
fn dtw(cost: &[f32], rows: usize, columns: usize) -> Vec<(usize, usize)> {
    let width = columns + 1;
    let mut total = vec![f32::INFINITY; (rows + 1) * width];
    // 0: diagonal, 1: down (next row), 2: right (next column).
    let mut trace = vec![0u8; (rows + 1) * width];
    total[0] = 0.0;
    for j in 1..=columns {
        for i in 1..=rows {
            let diagonal = total[(i - 1) * width + j - 1];
            let up = total[(i - 1) * width + j];
            let left = total[i * width + j - 1];
            let (best, step) = if diagonal < up && diagonal < left {
                (diagonal, 0)
            } else if up < diagonal && up < left {
                (up, 1)
            } else {
                (left, 2)
            };
            total[i * width + j] = cost[(i - 1) * columns + j - 1] + best;
            trace[i * width + j] = step;
        }
    }
    let (mut i, mut j) = (rows, columns);
    let mut path = Vec::with_capacity(rows + columns);
    while i > 0 || j > 0 {
        path.push((i.saturating_sub(1), j.saturating_sub(1)));
        let step = if i == 0 {
            2
        } else if j == 0 {
            1
        } else {
            trace[i * width + j]
        };
        match step {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    path
}

/// Joins opening marks to the word after them and closing marks to the word before, as
/// OpenAI's `merge_punctuations`; the emptied entries stay, with their tokens moved.
pub(crate) fn merge_punctuation(words: &mut [WordTiming]) {
    if words.len() < 2 {
        return;
    }
    let mut following = words.len() - 1;
    for previous in (0..words.len() - 1).rev() {
        let word = &words[previous].word;
        if word.starts_with(' ') && PREPEND_PUNCTUATION.contains(word.trim()) {
            let (head, tail) = words.split_at_mut(following);
            let (prev, next) = (&mut head[previous], &mut tail[0]);
            next.word = format!("{}{}", prev.word, next.word);
            next.tokens += prev.tokens;
            prev.word.clear();
            prev.tokens = 0;
        } else {
            following = previous;
        }
    }
    let mut previous = 0;
    for following in 1..words.len() {
        let (head, tail) = words.split_at_mut(following);
        let (prev, next) = (&mut head[previous], &mut tail[0]);
        if !prev.word.ends_with(' ') && APPEND_PUNCTUATION.contains(next.word.as_str()) {
            prev.word.push_str(&next.word);
            prev.tokens += next.tokens;
            next.word.clear();
            next.tokens = 0;
        } else {
            previous = following;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(word: &str) -> WordTiming {
        WordTiming {
            word: word.into(),
            tokens: 1,
            start: 0.0,
            end: 0.0,
            probability: 1.0,
        }
    }

    #[test]
    fn dtw_follows_the_cheap_diagonal() {
        // Three rows over six columns, each row cheap on its own pair of columns.
        let mut cost = vec![1.0f32; 18];
        for r in 0..3 {
            cost[r * 6 + 2 * r] = 0.0;
            cost[r * 6 + 2 * r + 1] = 0.0;
        }
        let path = dtw(&cost, 3, 6);
        assert_eq!(path.first(), Some(&(0, 0)));
        assert_eq!(path.last(), Some(&(2, 5)));
        let first_column = |row| path.iter().find(|&&(r, _)| r == row).map(|&(_, c)| c);
        assert_eq!(first_column(1), Some(2));
        assert_eq!(first_column(2), Some(4));
    }

    #[test]
    fn median_filter_removes_a_spike_and_keeps_a_step() {
        let mut row = vec![0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        median_filter_rows(&mut row, 11, 7);
        assert_eq!(row[3], 0.0);
        assert_eq!(row[10], 1.0);
    }

    #[test]
    fn punctuation_joins_its_neighbours() {
        let mut words: Vec<_> = [" \"", "Hello", ",", " world", "."].map(timing).into();
        merge_punctuation(&mut words);
        let texts: Vec<_> = words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(texts, ["", " \"Hello,", "", " world.", ""]);
        assert_eq!(words[1].tokens, 3);
    }
}
