// Output is read in arbitrary chunks; a chunk may end inside a multi-byte UTF-8
// character. Holding those last bytes back until the next chunk keeps every chunk
// that is text valid UTF-8 on its own, so clients can show it as it arrives.

/** Returns how many bytes at the end of `buf` start a character that is not complete. */
export function incompleteUtf8Tail(buf: Uint8Array): number {
  const len = buf.length;
  for (let back = 1; back <= Math.min(3, len); back++) {
    const byte = buf[len - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = byte >= 0xf8 ? 1 : byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/** Splits a stream of chunks so that no chunk ends inside a character. */
export class Utf8Chunker {
  private carry: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer {
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const tail = incompleteUtf8Tail(buf);
    this.carry = Buffer.from(buf.subarray(buf.length - tail));
    return buf.subarray(0, buf.length - tail);
  }

  /** What is left when the stream ends (an incomplete character, sent as it is). */
  flush(): Buffer {
    const rest = this.carry;
    this.carry = Buffer.alloc(0);
    return rest;
  }
}
