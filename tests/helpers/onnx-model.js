// onnx-model.js: ONNX models of a single operator, built in the tests with onnx-proto (the ONNX
// protobuf schema compiled for protobufjs), to run an operator in onnxruntime as an independent
// implementation on the tests' own inputs.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

const ELEMENT_TYPES = {
  float: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  bfloat16: onnx.TensorProto.DataType.BFLOAT16,
  bool: onnx.TensorProto.DataType.BOOL,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
};

function valueInfo({ name, type, dims }) {
  const elemType = ELEMENT_TYPES[type];
  if (elemType === undefined) throw new Error(`onnx-model: unknown element type ${type}`);
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim } } } });
}

function attribute(name, value) {
  const { AttributeType } = onnx.AttributeProto;
  if (Number.isInteger(value)) return onnx.AttributeProto.create({ name, type: AttributeType.INT, i: value });
  if (typeof value === 'number') return onnx.AttributeProto.create({ name, type: AttributeType.FLOAT, f: value });
  if (typeof value === 'string') {
    return onnx.AttributeProto.create({ name, type: AttributeType.STRING, s: new TextEncoder().encode(value) });
  }
  throw new Error(`onnx-model: attribute ${name} of unsupported value ${value}`);
}

/**
 * The serialized ModelProto (a Uint8Array, what InferenceSession.create takes) of one node.
 *   opType: e.g. 'RotaryEmbedding'; domain: '' (the default ONNX domain) or e.g. 'com.microsoft'
 *   opset: the version of that domain
 *   inputs, outputs: [{name, type: 'float' | 'int64' | ..., dims: [number or 'symbol', ...]}];
 *     an input named '' is an omitted optional input (it gets no graph input)
 *   attributes: {name: integer | float | string}; undefined values are left out
 */
export function singleNodeModel({ opType, domain = '', opset, inputs, outputs, attributes = {} }) {
  const node = onnx.NodeProto.create({
    opType,
    domain,
    input: inputs.map((i) => i.name),
    output: outputs.map((o) => o.name),
    attribute: Object.entries(attributes).filter(([, v]) => v !== undefined).map(([k, v]) => attribute(k, v)),
  });
  const opsetImport = [{ domain: '', version: domain === '' ? opset : 23 }];
  if (domain !== '') opsetImport.push({ domain, version: opset });
  const graph = onnx.GraphProto.create({
    name: `${opType}_test`,
    node: [node],
    input: inputs.filter((i) => i.name !== '').map(valueInfo),
    output: outputs.map(valueInfo),
  });
  const model = onnx.ModelProto.create({ irVersion: 10, opsetImport, producerName: 'rope-wasm tests', graph });
  return onnx.ModelProto.encode(model).finish();
}
