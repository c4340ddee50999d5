//! The CTranslate2 model file (`model.bin`), as faster-whisper uses it: a version, the spec's
//! name, then a table of named variables each followed by its data, then aliases. Weights may be
//! stored as float32, float16, bfloat16, or int8/int16 with a per-row `weight_scale` beside them.

use super::{Table, WeightError};
use candle_core::{Device, Tensor};
use half::{bf16, f16};
use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// The oldest and newest layouts of `model.bin` this reader knows.
const VERSIONS: std::ops::RangeInclusive<u32> = 2..=6;
const SCALE_SUFFIX: &str = "_scale";

#[derive(Clone, Copy, Debug, PartialEq)]
enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One variable's entry in the table: where its data lies in the file.
struct Variable {
    name: String,
    shape: Vec<usize>,
    dtype: DType,
    offset: u64,
    len: usize,
}

/// Walks the variable table without reading the data, checking that every variable's bytes are
/// inside the file.
fn variables<R: Read + Seek>(reader: &mut R, file_len: u64) -> Result<Vec<Variable>, WeightError> {
    let version = read_u32(reader)?;
    if !VERSIONS.contains(&version) {
        return Err(WeightError(format!(
            "format version {version} is not one of {VERSIONS:?}"
        )));
    }
    let spec = read_string(reader)?;
    read_u32(reader)?; // the spec's revision
    if spec != "WhisperSpec" {
        return Err(WeightError(format!("holds a {spec:?}, not a WhisperSpec")));
    }
    let count = read_u32(reader)?;
    let mut variables = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let name = read_string(reader)?;
        let rank = read_u8(reader)?;
        let shape = (0..rank)
            .map(|_| read_u32(reader).map(|d| d as usize))
            .collect::<Result<Vec<_>, _>>()?;
        let dtype_id = read_u8(reader)?;
        let dtype = DType::from_id(dtype_id)
            .ok_or_else(|| WeightError(format!("{name}: unknown data type {dtype_id}")))?;
        let len = read_u32(reader)? as usize;
        if len != shape.iter().product::<usize>() * dtype.size() {
            return Err(WeightError(format!(
                "{name}: {len} bytes do not fit shape {shape:?}"
            )));
        }
        let offset = reader.stream_position().map_err(WeightError::io)?;
        if offset + len as u64 > file_len {
            return Err(WeightError(format!(
                "{name}: data runs past the end of the file (truncated?)"
            )));
        }
        reader
            .seek(SeekFrom::Current(len as i64))
            .map_err(WeightError::io)?;
        variables.push(Variable {
            name,
            shape,
            dtype,
            offset,
            len,
        });
    }
    Ok(variables)
}

/// The shapes of the weights, and the small integer settings (such as `encoder/num_heads`).
pub(super) fn table(path: &Path) -> Result<Table, WeightError> {
    let file = std::fs::File::open(path).map_err(WeightError::io)?;
    let file_len = file.metadata().map_err(WeightError::io)?.len();
    let mut reader = BufReader::new(file);
    let mut table = Table::default();
    for variable in variables(&mut reader, file_len)? {
        if variable.shape.is_empty() {
            reader
                .seek(SeekFrom::Start(variable.offset))
                .map_err(WeightError::io)?;
            let mut bytes = vec![0; variable.len];
            reader.read_exact(&mut bytes).map_err(WeightError::io)?;
            if let Some(value) = scalar(variable.dtype, &bytes) {
                table.settings.insert(variable.name, value);
            }
        } else if !variable.name.ends_with(SCALE_SUFFIX) {
            table.shapes.insert(variable.name, variable.shape);
        }
    }
    Ok(table)
}

/// Every weight as a float32 tensor, quantized ones scaled back.
pub(super) fn load(path: &Path) -> Result<HashMap<String, Tensor>, WeightError> {
    let file = std::fs::File::open(path).map_err(WeightError::io)?;
    let file_len = file.metadata().map_err(WeightError::io)?.len();
    let mut reader = BufReader::new(file);
    let mut weights = Vec::new();
    let mut scales = HashMap::new();
    for variable in variables(&mut reader, file_len)? {
        if variable.shape.is_empty() {
            continue;
        }
        reader
            .seek(SeekFrom::Start(variable.offset))
            .map_err(WeightError::io)?;
        let mut bytes = vec![0; variable.len];
        reader.read_exact(&mut bytes).map_err(WeightError::io)?;
        let values = to_f32(variable.dtype, &bytes);
        match variable.name.strip_suffix(SCALE_SUFFIX) {
            Some(weight) => {
                scales.insert(weight.to_owned(), values);
            }
            None => weights.push((variable, values)),
        }
    }
    let mut tensors = HashMap::with_capacity(weights.len());
    for (variable, mut values) in weights {
        if matches!(variable.dtype, DType::I8 | DType::I16) {
            let scales = scales.get(&variable.name).ok_or_else(|| {
                WeightError(format!("{}: quantized without a scale", variable.name))
            })?;
            let row = variable.shape[1..].iter().product::<usize>().max(1);
            if scales.len() * row != values.len() {
                return Err(WeightError(format!(
                    "{}: wrong scale length",
                    variable.name
                )));
            }
            for (chunk, scale) in values.chunks_mut(row).zip(scales) {
                chunk.iter_mut().for_each(|v| *v /= scale);
            }
        }
        let tensor = Tensor::from_vec(values, variable.shape, &Device::Cpu)
            .map_err(|e| WeightError(format!("{}: {e}", variable.name)))?;
        tensors.insert(variable.name, tensor);
    }
    Ok(tensors)
}

fn to_f32(dtype: DType, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        DType::Bf16 => bytes
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        DType::I8 => bytes.iter().map(|&b| f32::from(b as i8)).collect(),
        DType::I16 => bytes
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
            .collect(),
        DType::I32 => bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect(),
    }
}

fn scalar(dtype: DType, bytes: &[u8]) -> Option<i64> {
    match (dtype, bytes) {
        (DType::I8, [b]) => Some(i64::from(*b as i8)),
        (DType::I16, [a, b]) => Some(i64::from(i16::from_le_bytes([*a, *b]))),
        (DType::I32, [a, b, c, d]) => Some(i64::from(i32::from_le_bytes([*a, *b, *c, *d]))),
        _ => None,
    }
}

fn read_u8(reader: &mut impl Read) -> Result<u8, WeightError> {
    let mut bytes = [0; 1];
    reader.read_exact(&mut bytes).map_err(WeightError::io)?;
    Ok(bytes[0])
}

fn read_u32(reader: &mut impl Read) -> Result<u32, WeightError> {
    let mut bytes = [0; 4];
    reader.read_exact(&mut bytes).map_err(WeightError::io)?;
    Ok(u32::from_le_bytes(bytes))
}

/// A length-prefixed, NUL-terminated string.
fn read_string(reader: &mut impl Read) -> Result<String, WeightError> {
    let mut len = [0; 2];
    reader.read_exact(&mut len).map_err(WeightError::io)?;
    let mut bytes = vec![0; usize::from(u16::from_le_bytes(len))];
    reader.read_exact(&mut bytes).map_err(WeightError::io)?;
    if bytes.last() == Some(&0) {
        bytes.pop();
    }
    String::from_utf8(bytes).map_err(|_| WeightError("a name is not UTF-8".into()))
}
