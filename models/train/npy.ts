/**
 * Minimal writer and reader of NumPy `.npy` arrays (format 1.0, little-endian uint16 or
 * int32, C order), so training data reaches Python with numpy alone:
 * `np.load(gzip.open('t2i.prompt.npy.gz'))`.
 */
const MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

export type NpyArray = { readonly dtype: '<u2'; readonly shape: readonly number[]; readonly data: Uint16Array }
  | { readonly dtype: '<i4'; readonly shape: readonly number[]; readonly data: Int32Array };

export function encodeNpy(array: NpyArray): Buffer {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (count !== array.data.length) throw new RangeError(`shape ${array.shape.join('x')} holds ${count} values, data has ${array.data.length}`);
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${array.dtype}', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(MAGIC.length + 4);
  head.set(MAGIC, 0);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

export function decodeNpy(bytes: Buffer): NpyArray {
  if (!bytes.subarray(0, 6).equals(Buffer.from(MAGIC))) throw new Error('not a .npy file');
  const len = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + len).toString('latin1');
  const descr = /'descr': '([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '';
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const raw = bytes.subarray(10 + len);
  const copy = new Uint8Array(raw).buffer;
  if (descr === '<u2') return { dtype: descr, shape, data: new Uint16Array(copy) };
  if (descr === '<i4') return { dtype: descr, shape, data: new Int32Array(copy) };
  throw new Error(`unsupported dtype ${descr}`);
}
