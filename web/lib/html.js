// htm bound to Preact's h: JSX-like templates without a build step (see app.js for the choice).
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
