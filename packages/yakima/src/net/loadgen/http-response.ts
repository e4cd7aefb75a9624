/** Largest response head accepted, bytes (status line + header fields). */
export const MAX_RESPONSE_HEAD = 16 * 1024;

/** A complete HTTP/1.x response: status and body (RFC 9112 section 6: framed by Content-Length). */
export interface HttpResponse {
  status: number;
  body: Uint8Array;
}

/**
 * Incremental parser of one HTTP/1.x response on a connection that carries one request
 * (`Connection: close`). Bounded: a head over `MAX_RESPONSE_HEAD` or a body over `maxBody`
 * bytes is an error, never unbounded memory.
 */
export class HttpResponseReader {
  private chunks: Uint8Array[] = [];
  private have = 0;
  private head: { status: number; bodyStart: number; length: number } | undefined;

  constructor(private readonly maxBody: number) {}

  /**
   * Add bytes. @returns the response once complete, undefined while more is needed, or an error
   * kind: 'malformed' (bad status line, no or bad Content-Length, head too long) or
   * 'too-long' (body over `maxBody`, or bytes past the body).
   */
  push(data: Uint8Array): HttpResponse | 'malformed' | 'too-long' | undefined {
    this.chunks.push(data);
    this.have += data.length;
    if (!this.head) {
      const buf = this.joined();
      const end = Buffer.from(buf.buffer, buf.byteOffset, buf.length).indexOf('\r\n\r\n');
      if (end < 0) return this.have > MAX_RESPONSE_HEAD ? 'malformed' : undefined;
      const text = Buffer.from(buf.buffer, buf.byteOffset, end).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})[ \r]/.exec(text + '\r');
      const cl = /\r\ncontent-length:[ \t]*(\d{1,10})[ \t]*(?:\r|$)/i.exec(text);
      if (!m || !cl) return 'malformed';
      this.head = { status: Number(m[1]), bodyStart: end + 4, length: Number(cl[1]) };
      if (this.head.length > this.maxBody) return 'too-long';
    }
    const { status, bodyStart, length } = this.head;
    if (this.have < bodyStart + length) return undefined;
    if (this.have > bodyStart + length) return 'too-long';
    const all = this.joined();
    return { status, body: all.subarray(bodyStart) };
  }

  private joined(): Uint8Array {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }
}
