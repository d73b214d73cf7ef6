// The binary frame that carries a step's output up the agent channel, so output
// bytes travel as they are (never base64 in JSON).
//
//   byte 0      stream: 1 = stdout, 2 = stderr
//   bytes 1-4   n: uint32 BE, the message counter shared with the text messages
//   bytes 5-6   step index: uint16 BE
//   bytes 7-    the output bytes

export type OutputStream = 'stdout' | 'stderr';

export interface OutputFrame {
  stream: OutputStream;
  n: number;
  step: number;
  data: Buffer;
}

const HEADER = 7;

export function encodeOutputFrame(f: OutputFrame): Buffer {
  const buf = Buffer.allocUnsafe(HEADER + f.data.length);
  buf.writeUInt8(f.stream === 'stdout' ? 1 : 2, 0);
  buf.writeUInt32BE(f.n, 1);
  buf.writeUInt16BE(f.step, 5);
  f.data.copy(buf, HEADER);
  return buf;
}

export function decodeOutputFrame(buf: Buffer): OutputFrame {
  if (buf.length < HEADER) throw new Error(`output frame too short: ${buf.length} bytes`);
  const kind = buf.readUInt8(0);
  if (kind !== 1 && kind !== 2) throw new Error(`output frame has unknown stream ${kind}`);
  return {
    stream: kind === 1 ? 'stdout' : 'stderr',
    n: buf.readUInt32BE(1),
    step: buf.readUInt16BE(5),
    data: buf.subarray(HEADER),
  };
}
