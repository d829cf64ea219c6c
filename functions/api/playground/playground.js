// The playground at GET /: one form for the three tasks, streamed with fetch (EventSource
// cannot POST). Image tasks ask for a preview every step (preview_every: 1) and show each
// one as it arrives; questions stream the answer's final prefix. Plain browser JavaScript,
// served as it is: no build step, nothing loaded from elsewhere.

const $ = (id) => document.getElementById(id);

const TASKS = {
  generate: { label: 'Prompt', example: 'a small red circle at the top left', image: false, button: 'Generate' },
  edit: { label: 'Instruction', example: 'make the red square blue', image: true, button: 'Edit' },
  ask: { label: 'Question', example: 'what color is the square?', image: true, button: 'Ask' },
};

const form = $('form');
const preview = $('preview');
const button = $('generate');
const needsKey = document.body.dataset.auth === 'bearer';
$('key-field').hidden = !needsKey;

/** The uploaded (or reused) image as a data URL; the API takes it as it is. */
let source = null;
/** The request in flight, so the button can stop it (the server then cancels the sampler). */
let running = null;

const task = () => form.elements.task.value;
const png = (b64) => `data:image/png;base64,${b64}`;
const ms = (x) => (x === null || x === undefined ? '–' : `${Math.round(x)} ms`);

function showTask() {
  const t = TASKS[task()];
  $('prompt-label').textContent = t.label;
  $('prompt').placeholder = t.example;
  $('example').textContent = t.example;
  $('source-field').hidden = !t.image;
  $('candidates-field').hidden = task() === 'ask';
  if (!running) button.textContent = t.button;
}

function setSource(url) {
  source = url;
  $('source-thumb').src = url;
  $('source-thumb').hidden = false;
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

function showImage(url, phase) {
  preview.src = url;
  preview.dataset.phase = phase;
  preview.alt = phase === 'final' ? 'the final image' : 'a preview of the image being sampled';
  preview.hidden = false;
  $('empty').hidden = true;
}

function showStats(rows) {
  const stats = $('stats');
  stats.replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = term;
      dd.textContent = value;
      return [dt, dd];
    }),
  );
  stats.hidden = false;
}

function addRun(cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) tr.insertCell().textContent = cell;
  $('runs').tBodies[0].prepend(tr);
  $('runs').hidden = false;
}

/** Splits a text stream into Server-Sent Events ({ event, data }); comments are skipped. */
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  let event = '';
  let data = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      pending += value;
      // A chunk may end between the \r and \n of one line break: keep a trailing \r for later.
      const cut = pending.endsWith('\r') ? pending.length - 1 : pending.length;
      const lines = pending.slice(0, cut).split(/\r\n|\r|\n/);
      pending = lines.pop() + pending.slice(cut);
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = text;
        else if (field === 'data') data.push(text);
      }
    }
  } finally {
    // Also when the caller stops early: the request ends and the server cancels its run.
    await reader.cancel().catch(() => undefined);
  }
}

class PlaygroundError extends Error {}

/** POSTs JSON and returns the event stream, or throws the API's error message. */
async function post(path, body, signal) {
  const headers = { 'content-type': 'application/json', accept: 'text/event-stream' };
  const key = $('api-key').value.trim();
  if (needsKey && key !== '') headers.authorization = `Bearer ${key}`;
  const res = await fetch(new URL(path, document.baseURI), { method: 'POST', headers, body: JSON.stringify(body), signal });
  if (!res.ok) {
    const payload = await res.json().catch(() => null);
    const error = payload?.error;
    if (res.status === 401) $('api-key').focus();
    throw new PlaygroundError(error ? `${error.message}${error.param ? ` (${error.param})` : ''}` : `HTTP ${res.status}`);
  }
  return readEvents(res.body);
}

function samplingFields() {
  const fields = { sampler: form.elements.sampler.value };
  const steps = $('steps').value.trim();
  const seed = $('seed').value.trim();
  if (steps !== '') fields.steps = Number(steps);
  if (seed !== '') fields.seed = Number(seed);
  return fields;
}

/** Image tasks also take the number of candidates to draw (the best one is kept). */
function imageFields() {
  const candidates = $('candidates').value.trim();
  return { ...samplingFields(), ...(candidates === '' ? {} : { candidates: Number(candidates) }) };
}

async function runImage(kind, path, body, signal) {
  const started = performance.now();
  let firstPreview = null;
  const frames = $('frames');
  for await (const e of await post(path, { ...body, stream: true, preview_every: 1 }, signal)) {
    const data = JSON.parse(e.data);
    if (e.event === 'error') throw new PlaygroundError(data.error.message);
    if (e.event === `${kind}.partial_image`) {
      firstPreview ??= performance.now() - started;
      showImage(png(data.b64_json), 'partial');
      $('progress').max = data.total_steps;
      $('progress').value = data.step;
      setStatus(`step ${data.step} of ${data.total_steps}`);
      const frame = document.createElement('img');
      frame.src = preview.src;
      frame.alt = `step ${data.step}`;
      frame.title = `step ${data.step}`;
      frames.append(frame);
    } else if (e.event === `${kind}.completed`) {
      const total = performance.now() - started;
      const { timings, usage } = data;
      showImage(png(data.b64_json), 'final');
      $('progress').max = data.total_steps;
      $('progress').value = data.total_steps;
      setStatus(`done: ${data.steps} steps, ${data.candidates > 1 ? `best of ${data.candidates}, ` : ''}${data.sampler} sampler, seed ${data.seed}`);
      const speed = timings.sampling_ms > 0 ? `${Math.round(usage.tokens_processed / (timings.sampling_ms / 1000)).toLocaleString('en')} tokens/s, ${(timings.sampling_ms / data.total_steps).toFixed(1)} ms/step` : '–';
      showStats([
        ['total', `${ms(timings.total_ms)} (server), ${ms(total)} (in this page)`],
        ['first preview', `${ms(timings.first_partial_image_ms)} (server), ${ms(firstPreview)} (in this page)`],
        ['sampling', `${ms(timings.sampling_ms)}, queued ${ms(timings.queued_ms)}`],
        ['tokens processed', `${usage.tokens_processed.toLocaleString('en')} in ${usage.forward_calls} forward passes`],
        ['speed', speed],
      ]);
      $('download').href = preview.src;
      $('actions').hidden = false;
      addRun([task(), data.sampler, String(data.steps), ms(timings.first_partial_image_ms), ms(timings.total_ms), usage.tokens_processed.toLocaleString('en')]);
      return;
    }
  }
  throw new PlaygroundError('the stream ended before the image was complete');
}

async function runAsk(question, signal) {
  const started = performance.now();
  let firstToken = null;
  let usage = null;
  const answer = $('answer');
  answer.hidden = false;
  showImage(source, 'source');
  const body = {
    messages: [{ role: 'user', content: [{ type: 'text', text: question }, { type: 'image_url', image_url: { url: source } }] }],
    stream: true,
    stream_options: { include_usage: true },
    ...samplingFields(),
  };
  for await (const e of await post('v1/chat/completions', body, signal)) {
    if (e.data === '[DONE]') {
      const total = performance.now() - started;
      setStatus('done');
      showStats([
        ['total', ms(total)],
        ['first words', ms(firstToken)],
        ['tokens processed', usage ? `${usage.tokens_processed.toLocaleString('en')} in ${usage.forward_calls} forward passes` : '–'],
      ]);
      addRun(['ask', body.sampler, body.steps === undefined ? 'default' : String(body.steps), ms(firstToken), ms(total), usage ? usage.tokens_processed.toLocaleString('en') : '–']);
      return;
    }
    const data = JSON.parse(e.data);
    if (e.event === 'error') throw new PlaygroundError(data.error.message);
    if (data.usage) usage = data.usage;
    const delta = data.choices[0]?.delta?.content;
    if (delta) {
      firstToken ??= performance.now() - started;
      answer.textContent += delta;
      setStatus('answering…');
    }
  }
  throw new PlaygroundError('the stream ended before the answer was complete');
}

function reset() {
  $('answer').textContent = '';
  $('answer').hidden = true;
  $('stats').hidden = true;
  $('actions').hidden = true;
  $('frames').replaceChildren();
  $('progress').value = 0;
  preview.removeAttribute('data-phase');
}

async function submit() {
  const t = task();
  const prompt = $('prompt').value.trim();
  if (prompt === '') return setStatus(`Write a ${TASKS[t].label.toLowerCase()} first.`, true);
  if (TASKS[t].image && source === null) return setStatus('Choose a PNG image first.', true);
  if (needsKey && $('api-key').value.trim() === '') {
    $('api-key').focus();
    return setStatus('This server needs an API key.', true);
  }
  reset();
  setStatus('waiting for the first step…');
  const controller = new AbortController();
  running = controller;
  button.textContent = 'Stop';
  button.classList.add('stop');
  try {
    if (t === 'generate') await runImage('image_generation', 'v1/images/generations', { prompt, ...imageFields() }, controller.signal);
    else if (t === 'edit') await runImage('image_edit', 'v1/images/edits', { prompt, image: source, ...imageFields() }, controller.signal);
    else await runAsk(prompt, controller.signal);
  } catch (e) {
    if (controller.signal.aborted) setStatus('stopped');
    else setStatus(e instanceof PlaygroundError ? e.message : `failed: ${e.message}`, true);
  } finally {
    running = null;
    button.classList.remove('stop');
    showTask();
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (running) running.abort();
  else void submit();
});
// Prompts are one line: Enter runs (it never stops a run), Shift+Enter breaks the line anyway.
$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    if (!running) form.requestSubmit();
  }
});
for (const radio of form.elements.task) radio.addEventListener('change', showTask);
$('example').addEventListener('click', () => {
  $('prompt').value = TASKS[task()].example;
  $('prompt').focus();
});
$('source').addEventListener('change', () => {
  const file = $('source').files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => setSource(reader.result);
  reader.readAsDataURL(file);
});
$('use-as-source').addEventListener('click', () => {
  setSource(preview.src);
  form.elements.task.value = 'edit';
  showTask();
  $('prompt').value = '';
  $('prompt').focus();
});
showTask();
