//! Fitting text into fixed-width columns: the lists align their columns by
//! display width (names may hold wide characters), cutting with `…`.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// `text` cut to at most `width` columns (ending in `…` when cut) and padded
/// with spaces to exactly `width`.
pub fn fit(text: &str, width: usize) -> String {
    let mut out = cut(text, width);
    let used = out.width();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// `text` cut to at most `width` columns, ending in `…` when cut.
pub fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_by_display_width() {
        assert_eq!(fit("TV", 4), "TV  ");
        assert_eq!(fit("Living room TV", 8), "Living …");
        assert_eq!(fit("客厅电视", 5), "客厅…");
        assert_eq!(fit("客厅电视", 6), "客厅… ");
        assert_eq!(cut("abc", 0), "");
        assert_eq!(cut("abc", 3), "abc");
    }
}
