// The screenshots in docs/mlflow.md: the MLflow UI over an imported study, its runs table with the parent run
// expanded, and one run's accuracy charts. Needs Node with `npm install playwright-core` and a Chromium
// (Debian: apt-get install chromium). After `python pipelines/mlflow_import.py studies/paper_mnist_full/study.yaml`
// and `make mlflow-ui`:
//   node tools/mlflow_screenshots.js http://127.0.0.1:5000 EXPERIMENT_ID RUN_ID OUT_DIR
const { chromium } = require('playwright-core');
const [base, exp, run, out] = process.argv.slice(2);
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const closeAssistant = async () => {
    const close = page.locator('[aria-label="Close"]').first();
    if (await close.count()) await close.click().catch(() => {});
  };
  await page.goto(`${base}/#/experiments/${exp}/runs?workflowType=machine_learning`);
  await page.getByText('paper_mnist_full', { exact: true }).last().waitFor({ timeout: 60000 });
  await closeAssistant();
  const link = page.locator('[role="row"] a', { hasText: 'paper_mnist_full' }).first();
  await link.waitFor({ timeout: 60000 });
  const box = await link.boundingBox();
  await page.mouse.click(box.x - 32, box.y + box.height / 2);  // the expander (+) before the parent's name
  await page.getByText('one_cycle-0').first().waitFor({ timeout: 30000 }).catch(() => {});
  await page.waitForTimeout(3000);
  await page.screenshot({ path: `${out}/mlflow_experiment.png` });
  await page.goto(`${base}/#/experiments/${exp}/runs/${run}/model-metrics?workflowType=machine_learning`);
  await page.getByPlaceholder('Search metric charts').waitFor({ timeout: 60000 });
  await closeAssistant();
  await page.getByPlaceholder('Search metric charts').fill('acc');
  await page.waitForTimeout(25000);
  await page.screenshot({ path: `${out}/mlflow_run_metrics.png` });
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
