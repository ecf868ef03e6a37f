"""Screenshots of documentation pages in a real browser (Debian's chromium, headless), for looking at a build.

    python benchmarks/site_screenshots.py SITE_DIR OUT_DIR [page.html ...]

Each page is shot at 1280 px wide, as the whole page down to `--max-height` pixels (PNG)."""
import argparse, pathlib, time
from selenium import webdriver

PAGES = ['index.html', 'tutorials/demo.html', 'attention.html', 'magnification.html', 'tutorials/published_models.html']

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('site'); p.add_argument('out'); p.add_argument('pages', nargs='*')
    p.add_argument('--max-height', type=int, default=6000)
    a = p.parse_args()
    site, out = pathlib.Path(a.site).resolve(), pathlib.Path(a.out); out.mkdir(parents=True, exist_ok=True)
    o = webdriver.ChromeOptions()
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--window-size=1280,900'): o.add_argument(arg)
    o.binary_location = '/usr/bin/chromium'
    d = webdriver.Chrome(options=o, service=webdriver.ChromeService('/usr/bin/chromedriver'))
    try:
        for page in a.pages or PAGES:
            d.get((site/page).as_uri()); time.sleep(0.5)
            h = min(d.execute_script('return document.body.scrollHeight'), a.max_height)
            d.set_window_size(1280, h); time.sleep(0.3)
            f = out/(page.replace('/', '_').replace('.html', '.png'))
            d.save_screenshot(str(f)); print(f, h)
            d.set_window_size(1280, 900)
    finally: d.quit()

if __name__ == '__main__': main()
