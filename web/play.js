// play.js: the Play and Step buttons of lock m − n. Play locks m − n and moves m and n forward
// together, one position per step, so that a reader sees every dial turn while the score q·k stays
// where it is. Past the last position shown, both go back to the start with the same m − n.
//
// prefers-reduced-motion: nothing moves by itself. Play is hidden and Step, which moves both
// positions by one per press, is the way through. The readout's live region is silenced while
// playing (a screen reader would otherwise announce every step) and speaks again on pause.

// ~7 steps a second: slow enough to follow the fast pair, which turns 1 radian per position, and
// slower than the page's URL update (120 ms after the last change), so the address keeps up.
const STEP_MS = 150;

/** m and n one position further; past the range, back so that the smaller is 0 (same m − n). */
export function nextPositions({ m, n, range }) {
  if (Math.max(m, n) + 1 <= range - 1) return { m: m + 1, n: n + 1 };
  const low = Math.min(m, n);
  return { m: m - low, n: n - low };
}

export function createPlayer({ getState, setState }) {
  const button = document.getElementById('play');
  const icon = button.querySelector('.icon');
  const text = button.querySelector('.text');
  const stepButton = document.getElementById('step');
  const note = document.getElementById('play-note');
  const readout = document.getElementById('readout');
  const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)');
  const noteText = note.innerHTML;
  let playing = false;
  let frame = 0;
  let last = 0;

  // One step: lock m − n (so that dragging a slider meanwhile keeps it too) and move both.
  const step = () => setState({ lock: true, ...nextPositions(getState()) });

  function tick(now) {
    frame = requestAnimationFrame(tick);
    if (now - last < STEP_MS) return;
    last = now;
    step();
  }

  function show() {
    button.dataset.playing = String(playing);
    icon.textContent = playing ? '❚❚' : '▶';
    text.textContent = playing ? 'Pause' : 'Play';
    button.hidden = reducedMotion.matches;
    readout.setAttribute('aria-live', playing ? 'off' : 'polite');
    note.innerHTML = reducedMotion.matches
      ? 'Your system asks for reduced motion, so nothing moves by itself: each press of Step moves '
        + '<var>m</var> and <var>n</var> forward together, and the score stays.'
      : noteText;
  }

  function play() {
    if (playing || reducedMotion.matches) return;
    playing = true;
    step();
    last = performance.now();
    frame = requestAnimationFrame(tick);
    show();
  }

  function pause() {
    if (!playing) return;
    playing = false;
    cancelAnimationFrame(frame);
    show();
  }

  button.addEventListener('click', () => (playing ? pause() : play()));
  stepButton.addEventListener('click', step);
  reducedMotion.addEventListener('change', () => {
    if (reducedMotion.matches) pause();
    show();
  });
  show();

  return {
    /** Called after every state change: unlocking stops the animation. */
    stateChanged(state) {
      if (playing && !state.lock) pause();
    },
  };
}
