// Approves (or denies) one request through Forge's approval page in headless Debian chromium,
// with JavaScript disabled in the page: the page must work as plain HTML forms.
// Usage: node approve-page.mjs --url ADMIN_URL --token JWT --id APPROVAL_ID [--decision approve|deny] [--comment TEXT]
// Prints one JSON document describing what the browser saw.
import { chromium } from 'playwright-core';

const args = Object.fromEntries(
    process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const decision = args.decision ?? 'approve';
const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 20000,
});
const seen = {};
try {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    const external = [];
    page.on('request', request => {
        if (!request.url().startsWith(args.url)) external.push(request.url());
    });

    const first = await page.goto(`${args.url}/approvals/${args.id}`);
    seen.unauthenticatedStatus = first.status();
    seen.loginShown = await page.locator('textarea#token').count() === 1;
    await page.fill('textarea#token', args.token);
    await Promise.all([page.waitForURL(`${args.url}/approvals`), page.click('button[type=submit]')]);
    seen.listed = await page.locator(`#approvals a[href="/approvals/${args.id}"]`).count() === 1;

    await Promise.all([page.waitForURL(`${args.url}/approvals/${args.id}`), page.click(`a[href="/approvals/${args.id}"]`)]);
    seen.statusBefore = (await page.textContent('#status')).trim();
    seen.caller = (await page.textContent('#caller')).trim();
    seen.tool = (await page.textContent('#tool')).trim();
    seen.arguments = JSON.parse(await page.textContent('#arguments'));
    await page.fill('textarea#comment', args.comment ?? '');
    await Promise.all([page.waitForLoadState('load'), page.click(`button[value=${decision}]`)]);
    await page.waitForSelector('#decided-by');
    seen.statusAfter = (await page.textContent('#status')).trim();
    seen.decidedBy = (await page.textContent('#decided-by')).trim();
    seen.externalRequests = external;
} finally {
    await browser.close();
}
console.log(JSON.stringify(seen));
