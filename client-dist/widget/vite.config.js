// widget/vite.config.js - build of the embeddable web-chat widget into one
// classic script, client-dist/dist/widget.js, which nginx serves at
// /widget.js.  Runs after the app's build (package.json "build"), which
// empties dist/, so this one must not.
// SPDX-License-Identifier: MIT
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../dist', import.meta.url)),
    emptyOutDir: false,
    sourcemap: false,
    lib: {
      entry: `${here}widget.js`,
      name: 'NonflexChat',
      formats: ['iife'],
      fileName: () => 'widget.js',
    },
  },
});
