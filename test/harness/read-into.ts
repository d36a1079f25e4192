/** Test helper: reads a stream that has `readInto` (src/net/socket-body.ts) to its end the way the pipeline does. */

/** Reads `stream` with readInto, straight into fresh buffers of `size` bytes, until it reports the end. */
export async function readAllInto(stream: unknown, size = 1 << 20): Promise<Buffer> {
  const body = stream as { readInto(b: Uint8Array, o: number, l: number): Promise<number> }
  const out: Buffer[] = []
  for (;;) {
    const into = Buffer.alloc(size)
    const n = await body.readInto(into, 0, size)
    if (n === 0) return Buffer.concat(out)
    out.push(into.subarray(0, n))
  }
}
