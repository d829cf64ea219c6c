/**
 * `POST /v1/chat/completions` for questions about an image: the question is the text of the
 * last (user) message, the image the most recent `image_url` part (a PNG data URL) of a
 * user message. Answered as a `chat.completion`, or streamed as `chat.completion.chunk`s,
 * one for each step that makes more of the answer final, then `data: [DONE]`.
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import type { RgbImage } from '../core/image.ts';
import type { TextResult, TextStep } from '../pipeline/pipeline.ts';
import { ApiError, forParam } from './errors.ts';
import type { ImageDeps } from './images.ts';
import { checkModel, drain, runTimings, samplingOptions, unixNow } from './run-pipeline.ts';
import type { ChatCompletionRequest, ChatMessage } from './schemas.ts';
import { sseResponse } from './sse.ts';
import { imageFromDataUrl } from './uploads.ts';

interface Conversation {
  readonly question: string;
  readonly questionParam: string;
  readonly image: RgbImage;
}

/**
 * @example
 * app.openapi(chatRoute, (c) => answerChat(c, deps, c.req.valid('json')));
 */
export function answerChat(c: Context, deps: ImageDeps, body: ChatCompletionRequest): Response | Promise<Response> {
  const { pipeline } = deps;
  checkModel(pipeline, body.model);
  const { question, questionParam, image } = readConversation(body.messages);
  const requested = samplingOptions(body);
  const settings = pipeline.settings('answer', requested);
  const promptTokens = forParam(questionParam, () => pipeline.tokenizers.text.encode(question).length) + pipeline.manifest.image.grid ** 2;
  const run = deps.runs.admit(c.req.raw.signal, (signal) => forParam(questionParam, () => pipeline.answer(image, question, { ...requested, seed: settings.seed, signal })));

  const id = `chatcmpl-${randomUUID()}`;
  const created = unixNow();
  const model = pipeline.manifest.name;
  const usage = (result: TextResult) => {
    const completion = pipeline.tokenizers.text.encode(result.text).length;
    return {
      prompt_tokens: promptTokens,
      completion_tokens: completion,
      total_tokens: promptTokens + completion,
      tokens_processed: result.usage.tokensIn,
      forward_calls: result.usage.forwardCalls,
    };
  };
  const sampled = (result: TextResult) => ({ timings: runTimings(run, result.usage), seed: result.usage.seed, sampler: result.usage.sampler, steps: result.usage.steps });

  if (body.stream !== true) {
    return run.execute((steps) => drain(steps, () => undefined)).then((result) =>
      c.json(
        {
          id,
          object: 'chat.completion' as const,
          created,
          model,
          choices: [{ index: 0, message: { role: 'assistant' as const, content: result.text, refusal: null }, finish_reason: 'stop' as const, logprobs: null }],
          usage: usage(result),
          ...sampled(result),
        },
        200,
      ),
    );
  }
  return sseResponse(c, run, deps, async (send) => {
    const chunk = (delta: { role?: 'assistant'; content?: string }, finishReason: 'stop' | null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    });
    await send(undefined, chunk({ role: 'assistant', content: '' }, null));
    let streamed = '';
    const onStep = async (e: TextStep) => {
      if (e.delta === '' || !e.text.startsWith(streamed)) return;
      streamed = e.text;
      await send(undefined, chunk({ content: e.delta }, null));
    };
    const result = await run.execute((steps) => drain(steps, onStep));
    if (result.text !== streamed && result.text.startsWith(streamed)) await send(undefined, chunk({ content: result.text.slice(streamed.length) }, null));
    await send(undefined, chunk({}, 'stop'));
    if (body.stream_options?.include_usage === true) await send(undefined, { ...chunk({}, null), choices: [], usage: usage(result) });
    await send(undefined, '[DONE]');
  });
}

/** The question and the image of a conversation, or a 422 naming the message at fault. */
function readConversation(messages: readonly ChatMessage[]): Conversation {
  const lastIndex = messages.length - 1;
  const last = messages[lastIndex];
  if (last?.role !== 'user') {
    throw new ApiError(422, 'invalid_value', 'the last message must be the user\'s question about the image', `messages[${lastIndex}].role`);
  }
  const questionParam = `messages[${lastIndex}].content`;
  const question = (typeof last.content === 'string' ? last.content : last.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join(' ')).trim();
  if (question === '') throw new ApiError(422, 'missing_question', 'the last user message has no text: ask a question about the image', questionParam);
  for (let m = lastIndex; m >= 0; m--) {
    const message = messages[m];
    if (message?.role !== 'user' || typeof message.content === 'string') continue;
    for (let p = message.content.length - 1; p >= 0; p--) {
      const part = message.content[p];
      if (part?.type === 'image_url') return { question, questionParam, image: imageFromDataUrl(part.image_url.url, `messages[${m}].content[${p}].image_url.url`) };
    }
  }
  throw new ApiError(422, 'missing_image', 'no image in the conversation: add an image_url content part with a data:image/png;base64,… URL to a user message', 'messages');
}
