// The same job as the rendition core, done the idiomatic sharp way: auto-orient (rotate() with no
// arguments), long edge 2048 / 1024 / 400 without enlargement, JPEG q82 4:2:0 and WebP q80 each;
// sharp drops all metadata unless told to keep it. usage: node sharp_job.js IN OUTDIR
const sharp = require('sharp');
const [inp, out] = process.argv.slice(2);
const base = sharp(inp).rotate();
Promise.all([2048, 1024, 400].map((s) => {
  const r = base.clone().resize(s, s, { fit: 'inside', withoutEnlargement: true });
  return Promise.all([
    r.clone().jpeg({ quality: 82, chromaSubsampling: '4:2:0' }).toFile(`${out}/d_${s}.jpg`),
    r.clone().webp({ quality: 80 }).toFile(`${out}/d_${s}.webp`),
  ]);
})).catch((e) => { console.error(e); process.exit(1); });
