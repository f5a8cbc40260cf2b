import { Inject, Injectable } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Subscription, type Observable } from 'rxjs';
import type { AppConfig } from '../../config/app-config.js';
import { APP_CONFIG } from '../../config/config.module.js';
import { toParleyError } from '../errors/to-parley-error.js';
import { sendError } from '../http/send-json.js';
import { ActiveStreams } from './active-streams.js';
import { DONE_DATA, errorFrameData, formatSseEvent, SSE_PING, type SseFrame } from './sse-frame.js';

export interface SseWriteOptions {
  /** Extra headers for the answer (rate-limit headers, request id...). */
  headers?: Record<string, string>;
  /** Called once when the client goes away before the stream ended. */
  onClientGone?: () => void;
}

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
};

/**
 * The only code that writes SSE. It holds the status line until the first frame (or the
 * first-event wait passes), so a failure before that gets its real HTTP status; after that a
 * failure is one error frame, then `[DONE]`. It pings while the source is silent and stops the
 * source (unsubscribes) as soon as the client disconnects.
 */
@Injectable()
export class SseWriter {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly activeStreams: ActiveStreams,
  ) {}

  write(reply: FastifyReply, frames: Observable<SseFrame>, options: SseWriteOptions = {}): Promise<void> {
    // The answer is written to the socket from here on; Fastify keeps out of it.
    if (!reply.sent) reply.hijack();
    const res = reply.raw;
    const done = new Promise<void>((resolve) => {
      let lastId = 0;
      let finished = false;
      // Created first so a source that ends synchronously is still torn down by finish().
      const subscription = new Subscription();
      let heartbeat: NodeJS.Timeout | undefined;

      let corked = false;

      /** The status line; sent on its own only when no frame follows it right away. */
      const openStream = (flush: boolean): void => {
        if (res.headersSent) return;
        res.writeHead(200, { ...SSE_HEADERS, ...options.headers });
        if (flush) res.flushHeaders();
      };
      const armHeartbeat = (): void => {
        // refresh() restarts the same timer: cheaper than a new one per frame.
        if (heartbeat) {
          heartbeat.refresh();
          return;
        }
        heartbeat = setTimeout(() => {
          if (finished) return;
          // Before the status line is out, silence is the first-event wait's business.
          if (res.headersSent) res.write(SSE_PING);
          heartbeat?.refresh();
        }, this.config.streamHeartbeatMs);
      };
      const firstEventWait = setTimeout(() => {
        if (!finished) openStream(true);
      }, this.config.streamFirstEventWaitMs);

      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(firstEventWait);
        clearTimeout(heartbeat);
        subscription.unsubscribe();
        if (!res.writableEnded) res.end();
        resolve();
      };
      const emit = (frame: SseFrame): void => {
        // Frame ids start at 1: none has been written while lastId is 0.
        const first = lastId === 0;
        lastId = frame.id;
        // The socket itself, not the response: once the response ends it lets go of its socket,
        // and that socket's cork must still be undone.
        const socket = res.socket;
        if (!first && !corked && socket) {
          // Later frames produced in one turn of the event loop (several events in one upstream
          // packet) leave in one socket write; each write is a syscall and a wake-up of the client.
          corked = true;
          socket.cork();
          setImmediate(() => {
            corked = false;
            socket.uncork();
          });
        }
        res.write(formatSseEvent(frame));
        // The status line and the first frame leave at once: the time to first token is what waits.
        // node:http corks the socket until the next tick, which comes only after everything else
        // this turn does (the rest of an upstream packet, the end of the answer).
        if (first) while (socket?.writableCorked) socket.uncork();
      };

      res.on('close', () => {
        if (finished) return;
        const gone = !res.writableFinished;
        finish();
        if (gone) options.onClientGone?.();
      });

      armHeartbeat();
      subscription.add(
        frames.subscribe({
          next: (frame) => {
            if (finished) return;
            openStream(false);
            emit(frame);
            // A replayed log already ends with its own `[DONE]`.
            if (frame.data === DONE_DATA) finish();
            else armHeartbeat();
          },
          error: (err: unknown) => {
            if (finished) return;
            if (!res.headersSent) {
              sendError(reply, toParleyError(err), options.headers);
              finish();
              return;
            }
            emit({ id: lastId + 1, data: errorFrameData(err) });
            emit({ id: lastId + 1, data: DONE_DATA });
            finish();
          },
          complete: () => {
            if (finished) return;
            openStream(false);
            emit({ id: lastId + 1, data: DONE_DATA });
            finish();
          },
        }),
      );
      // The client may have gone while the request was being prepared: its 'close' fired before
      // the listener above existed. Started and then gone, like any other disconnect.
      if (res.destroyed && !finished) {
        finish();
        options.onClientGone?.();
      }
    });
    this.activeStreams.track(done);
    return done;
  }
}
