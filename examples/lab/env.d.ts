/** Vite's `?url` imports: the URL of the emitted asset (relative to the page with `base: './'`). */
declare module '*?url' {
  const url: string;
  export default url;
}

/** Vite's `?raw` imports: the file's text. */
declare module '*?raw' {
  const text: string;
  export default text;
}
