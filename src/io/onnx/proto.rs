//! The part of ONNX's protobuf schema (`onnx.proto`, proto2) an export writes, encoded by
//! hand: nine message types and four wire types are all it takes, so no code generator or
//! protobuf runtime is needed. Field numbers are those of `onnx/onnx.proto`.

/// ONNX tensor element types (`TensorProto.DataType`).
pub(super) const FLOAT: i64 = 1;
pub(super) const INT64: i64 = 7;

/// A protobuf message being written.
#[derive(Default)]
pub(super) struct Msg(pub(super) Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }
    /// A varint field (int32, int64, enum).
    pub(super) fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }
    /// A 32-bit float field.
    pub(super) fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A length-delimited field (bytes, string, message).
    pub(super) fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    pub(super) fn str(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    pub(super) fn msg(&mut self, field: u32, m: &Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// `TensorProto`: a float32 or int64 initializer, data as `raw_data` (little-endian).
pub(super) fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> Msg {
    let mut t = Msg::default();
    for &d in dims {
        t.int(1, d as i64);
    }
    t.int(2, FLOAT).str(8, name);
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

pub(super) fn tensor_i64(name: &str, dims: &[usize], data: &[i64]) -> Msg {
    let mut t = Msg::default();
    for &d in dims {
        t.int(1, d as i64);
    }
    t.int(2, INT64).str(8, name);
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

/// A dimension of a graph input or output: fixed, or named (open).
pub(super) enum DimP {
    Fixed(usize),
    Named(String),
}

/// `ValueInfoProto` of a tensor (`TypeProto.Tensor` with its shape).
pub(super) fn value_info(name: &str, elem: i64, dims: &[DimP]) -> Msg {
    let mut shape = Msg::default();
    for d in dims {
        let mut dim = Msg::default();
        match d {
            DimP::Fixed(v) => dim.int(1, *v as i64),
            DimP::Named(s) => dim.str(2, s),
        };
        shape.msg(1, &dim);
    }
    let mut tensor = Msg::default();
    tensor.int(1, elem).msg(2, &shape);
    let mut ty = Msg::default();
    ty.msg(1, &tensor);
    let mut v = Msg::default();
    v.str(1, name).msg(2, &ty);
    v
}

/// An attribute of a node.
pub(super) enum Attr {
    Int(i64),
    Str(String),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Strs(Vec<String>),
}

/// `NodeProto`.
pub(super) fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: &[(&str, Attr)],
) -> Msg {
    let mut n = Msg::default();
    for i in inputs {
        n.str(1, i);
    }
    for o in outputs {
        n.str(2, o);
    }
    n.str(3, name).str(4, op);
    for (key, a) in attrs {
        let mut m = Msg::default();
        m.str(1, key);
        match a {
            Attr::Int(v) => m.int(3, *v).int(20, 2),
            Attr::Str(s) => m.str(4, s).int(20, 3),
            Attr::Ints(v) => {
                for x in v {
                    m.int(8, *x);
                }
                m.int(20, 7)
            }
            Attr::Floats(v) => {
                for x in v {
                    m.float(7, *x);
                }
                m.int(20, 6)
            }
            Attr::Strs(v) => {
                for s in v {
                    m.str(9, s);
                }
                m.int(20, 8)
            }
        };
        n.msg(5, &m);
    }
    n
}

/// `ModelProto` around a graph: IR version 8, the default domain at `opset`.
pub(super) fn model(graph: &Msg, opset: i64, doc: &str) -> Vec<u8> {
    let mut op = Msg::default();
    op.str(1, "").int(2, opset);
    let mut m = Msg::default();
    m.int(1, 8)
        .str(2, "rnnkit")
        .str(3, env!("CARGO_PKG_VERSION"))
        .str(6, doc)
        .msg(7, graph)
        .msg(8, &op);
    m.0
}
