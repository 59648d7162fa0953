//! TensorFlow event files as smdebug writes and reads them: `Event` protocol buffers (the
//! subset of smdebug's `event.proto`, `summary.proto` and `tensor.proto` a tensor needs),
//! each framed as TensorFlow's record writer frames it: the length (u64, little endian), its
//! masked CRC32C, the bytes, their masked CRC32C.

use prost::Message;

/// `types.proto`'s DataType numbers used here.
pub const DT_FLOAT: i32 = 1;
pub const DT_DOUBLE: i32 = 2;
pub const DT_INT32: i32 = 3;
pub const DT_INT64: i32 = 9;
pub const DT_STRING: i32 = 7;
pub const DT_BOOL: i32 = 10;

/// smdebug's plugin names for a value's mode and mode step (`smdebug.core.modes`).
pub const MODE_PLUGIN: &str = "mode";
pub const MODE_STEP_PLUGIN: &str = "mode_step";

#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Value {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SummaryMetadata {
    #[prost(message, repeated, tag = "1")]
    pub plugin_data: Vec<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(string, tag = "2")]
    pub content: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShape>,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShape {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Dim {
    #[prost(int64, tag = "1")]
    pub size: i64,
    #[prost(string, tag = "2")]
    pub name: String,
}

/// TensorFlow's checksum mask (`tensorflow/core/lib/hash/crc32c.h`): rotated and offset so
/// a CRC of data that holds CRCs stays well distributed.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// What smdebug's record writer puts where the data's checksum goes unless asked to
/// checksum (`write_checksum=False`, its default): the masked CRC of these bytes. Its
/// reader's default check ("minimal") insists on exactly that.
pub const SMDEBUG_CHECKSUM_MAGIC: &[u8] = b"0x12345678";

/// Which checksum ends a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Footer {
    /// The data's own masked CRC32C, as TensorFlow (and TensorBoard's reader) want.
    Data,
    /// smdebug's fixed footer, as smdebug's own writer and reader use.
    Smdebug,
}

/// One record as TFRecordWriter frames it: the length, its masked CRC32C, the data, the
/// footer checksum.
pub fn frame(data: &[u8], footer: Footer) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    let crc = match footer {
        Footer::Data => masked_crc(data),
        Footer::Smdebug => masked_crc(SMDEBUG_CHECKSUM_MAGIC),
    };
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// What is wrong with bytes that should be records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the record at byte {0} is cut short")]
    Truncated(usize),
    #[error("the record at byte {0} fails its checksum")]
    Checksum(usize),
    #[error("the record at byte {offset} is not an Event: {source}")]
    Decode {
        offset: usize,
        source: prost::DecodeError,
    },
}

/// The records of a file, each with where it starts and how long it is framed (what
/// smdebug's index holds as `start_idx` and `length`).
/// A record: where it starts, its framed length, its data.
pub type Record<'a> = (usize, usize, &'a [u8]);

pub fn records(bytes: &[u8]) -> Result<Vec<Record<'_>>, RecordError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let head = bytes.get(at..at + 12).ok_or(RecordError::Truncated(at))?;
        let length = u64::from_le_bytes(head[..8].try_into().expect("8 bytes")) as usize;
        if masked_crc(&head[..8]) != u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")) {
            return Err(RecordError::Checksum(at));
        }
        let end = at
            .checked_add(12 + length + 4)
            .filter(|&e| e <= bytes.len())
            .ok_or(RecordError::Truncated(at))?;
        let data = &bytes[at + 12..at + 12 + length];
        let crc = u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes"));
        if crc != masked_crc(data) && crc != masked_crc(SMDEBUG_CHECKSUM_MAGIC) {
            return Err(RecordError::Checksum(at));
        }
        out.push((at, end - at, data));
        at = end;
    }
    Ok(out)
}

/// A record's event.
pub fn decode(offset: usize, data: &[u8]) -> Result<Event, RecordError> {
    Event::decode(data).map_err(|source| RecordError::Decode { offset, source })
}

/// A tensor's values as numbers, whichever field the writer used; `None` for text.
pub fn values(t: &TensorProto) -> Option<Vec<f64>> {
    if !t.tensor_content.is_empty() {
        let c = &t.tensor_content;
        let v = match t.dtype {
            DT_FLOAT => c
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4")) as f64)
                .collect(),
            DT_DOUBLE => c
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8")))
                .collect(),
            DT_INT32 => c
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes(b.try_into().expect("4")) as f64)
                .collect(),
            DT_INT64 => c
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8")) as f64)
                .collect(),
            DT_BOOL => c.iter().map(|&b| f64::from(u8::from(b != 0))).collect(),
            _ => return None,
        };
        return Some(v);
    }
    if t.dtype == DT_STRING || !t.string_val.is_empty() {
        return None;
    }
    Some(match t.dtype {
        DT_FLOAT => t.float_val.iter().map(|&v| v as f64).collect(),
        DT_DOUBLE => t.double_val.clone(),
        DT_INT32 => t.int_val.iter().map(|&v| v as f64).collect(),
        DT_INT64 => t.int64_val.iter().map(|&v| v as f64).collect(),
        DT_BOOL => t.bool_val.iter().map(|&v| f64::from(u8::from(v))).collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_tensorflows() {
        // TensorFlow's crc32c_test: crc32c("123456789") = 0xe3069283, and the masked form.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(
            masked_crc(b"123456789"),
            0xe306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }

    #[test]
    fn records_round_trip_and_damage_is_found() {
        let mut file = frame(b"abc", Footer::Data);
        file.extend(frame(b"", Footer::Smdebug));
        let read = records(&file).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!((read[0].0, read[0].1, read[0].2), (0, 19, &b"abc"[..]));
        assert_eq!(read[1].0, 19);
        let mut broken = file.clone();
        broken[13] ^= 1;
        assert!(matches!(records(&broken), Err(RecordError::Checksum(0))));
        assert!(matches!(
            records(&file[..file.len() - 2]),
            Err(RecordError::Truncated(19))
        ));
    }

    #[test]
    fn tensor_values_come_from_either_field() {
        let content = TensorProto {
            dtype: DT_FLOAT,
            tensor_content: [1.5f32, -2.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            ..Default::default()
        };
        assert_eq!(values(&content), Some(vec![1.5, -2.0]));
        let listed = TensorProto {
            dtype: DT_INT64,
            int64_val: vec![3, 4],
            ..Default::default()
        };
        assert_eq!(values(&listed), Some(vec![3.0, 4.0]));
        let text = TensorProto {
            dtype: DT_STRING,
            string_val: vec![b"x".to_vec()],
            ..Default::default()
        };
        assert_eq!(values(&text), None);
    }
}
