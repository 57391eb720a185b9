/** Types of build.mjs (the kernel module's build script). */
export function buildKernels(): Promise<{ plain: Uint8Array; shared: Uint8Array; relaxed: Uint8Array; relaxedShared: Uint8Array }>;
export function kernelsModuleSource(plain: Uint8Array, shared: Uint8Array, relaxed?: Uint8Array, relaxedShared?: Uint8Array): string;
