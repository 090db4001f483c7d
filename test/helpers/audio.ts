import { readFileSync } from 'node:fs';

/**
 * What a phone recorded (baresip's sndfile WAV files), read back: whose tone it holds. Each phone
 * of a test sends its own sine, so a recording that holds the other phone's frequency proves
 * that phone's audio crossed, and one of silence or noise does not pass.
 */
export interface Recording {
  readonly sampleRate: number;
  /** The first channel, as numbers in -1..1. */
  readonly samples: Float64Array;
}

/** A 16-bit PCM WAV file (RIFF chunks walked, not assumed at fixed offsets). */
export function readWav(file: string): Recording {
  const bytes = readFileSync(file);
  if (bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') throw new Error(`${file} is no WAV file`);
  let offset = 12;
  let sampleRate = 0;
  let channels = 1;
  let bits = 16;
  for (let chunks = 0; offset + 8 <= bytes.length && chunks < 64; chunks++) {
    const id = bytes.toString('latin1', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      channels = bytes.readUInt16LE(body + 2);
      sampleRate = bytes.readUInt32LE(body + 4);
      bits = bytes.readUInt16LE(body + 14);
    } else if (id === 'data') {
      if (bits !== 16) throw new Error(`${file}: ${bits}-bit samples`);
      const end = Math.min(bytes.length, body + size);
      const frames = Math.floor((end - body) / (2 * channels));
      const samples = new Float64Array(frames);
      for (let i = 0; i < frames; i++) samples[i] = bytes.readInt16LE(body + i * 2 * channels) / 32768;
      return { sampleRate, samples };
    }
    offset = body + size + (size % 2);
  }
  throw new Error(`${file} holds no audio`);
}

/** Power at `hz` (Goertzel), as a share of the signal's whole power: near 1 for a pure tone. */
export function toneShare(recording: Recording, hz: number): number {
  const { samples, sampleRate } = recording;
  if (samples.length === 0) return 0;
  const coefficient = 2 * Math.cos((2 * Math.PI * hz) / sampleRate);
  let previous = 0;
  let beforePrevious = 0;
  let total = 0;
  for (const x of samples) {
    const current = x + coefficient * previous - beforePrevious;
    beforePrevious = previous;
    previous = current;
    total += x * x;
  }
  const power = previous * previous + beforePrevious * beforePrevious - coefficient * previous * beforePrevious;
  return total === 0 ? 0 : (2 * power) / (samples.length * total);
}

/** Root-mean-square level of the recording (0 for digital silence). */
export function rmsLevel(recording: Recording): number {
  let total = 0;
  for (const x of recording.samples) total += x * x;
  return Math.sqrt(total / Math.max(1, recording.samples.length));
}
