/// Bookmark files shaped exactly like real browser exports.
public enum BookmarkFileFixtures {
    /// A 1x1 PNG as Firefox and Chrome embed favicons.
    public static let pngIcon =
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="

    /// Firefox's "Export Bookmarks to HTML": the Bookmarks Menu's items at the top level, the toolbar
    /// and "Other Bookmarks" as flagged folders, a separator, tags, a keyword, descriptions.
    public static let firefox = #"""
        <!DOCTYPE NETSCAPE-Bookmark-file-1>
        <!-- This is an automatically generated file.
             It will be read and overwritten.
             DO NOT EDIT! -->
        <META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
        <meta http-equiv="Content-Security-Policy"
              content="default-src 'self'; script-src 'none'; img-src data: *; object-src 'none'"></meta>
        <TITLE>Bookmarks</TITLE>
        <H1>Bookmarks Menu</H1>

        <DL><p>
            <DT><H3 ADD_DATE="1699000000" LAST_MODIFIED="1699000100">Mozilla Firefox</H3>
            <DL><p>
                <DT><A HREF="https://support.mozilla.org/products/firefox" ADD_DATE="1699000010" LAST_MODIFIED="1699000020" ICON_URI="https://support.mozilla.org/static/img/favicon.png" ICON="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==">Get Help</A>
                <DT><A HREF="https://www.mozilla.org/en-US/about/" ADD_DATE="1699000030" LAST_MODIFIED="1699000030" ICON_URI="https://www.mozilla.org/media/img/favicons/mozilla/favicon.d25d81d39065.ico">About Us</A>
            </DL><p>
            <HR>
            <DT><A HREF="https://duckduckgo.com/?q=swift+6&amp;ia=web" ADD_DATE="1700000000" LAST_MODIFIED="1700000500" SHORTCUTURL="ddg" TAGS="search,tools">Search &amp; Find</A>
            <DD>My favourite search engine &#8212; &lt;fast&gt; &amp; private
            <DT><H3 ADD_DATE="1690000000" LAST_MODIFIED="1700000900" PERSONAL_TOOLBAR_FOLDER="true">Bookmarks Toolbar</H3>
            <DD>Add bookmarks to this folder to see them displayed on the Bookmarks Toolbar
            <DL><p>
                <DT><A HREF="https://www.mozilla.org/en-US/firefox/central/" ADD_DATE="1690000010" LAST_MODIFIED="1690000010">Getting Started</A>
                <DT><H3 ADD_DATE="1695000000" LAST_MODIFIED="1696000000">Dev</H3>
                <DL><p>
                    <DT><A HREF="https://developer.mozilla.org/en-US/" ADD_DATE="1695000100" LAST_MODIFIED="1695000100">MDN Web Docs</A>
                    <DT><H3 ADD_DATE="1695500000" LAST_MODIFIED="1695600000">Swift</H3>
                    <DL><p>
                        <DT><A HREF="https://www.swift.org/" ADD_DATE="1695500100" LAST_MODIFIED="1695500100">Swift.org</A>
                        <DT><A HREF="https://forums.swift.org/" ADD_DATE="1695500200" LAST_MODIFIED="1695500300" TAGS="swift,community">Swift Forums</A>
                    </DL><p>
                </DL><p>
                <DT><A HREF="javascript:(function(){alert(%22Hello%20from%20Cairn%22);})();" ADD_DATE="1696000100" LAST_MODIFIED="1696000100">Say Hello</A>
            </DL><p>
            <DT><H3 ADD_DATE="1690000000" LAST_MODIFIED="1700000950" UNFILED_BOOKMARKS_FOLDER="true">Other Bookmarks</H3>
            <DL><p>
                <DT><A HREF="https://news.ycombinator.com/" ADD_DATE="1700000600" LAST_MODIFIED="1700000600">Hacker News</A>
            </DL><p>
        </DL>

        """#

    /// Chrome's "Export bookmarks": "Bookmarks bar" flagged as the toolbar, then "Other bookmarks"
    /// and "Mobile bookmarks" with no attribute.
    public static let chrome = #"""
        <!DOCTYPE NETSCAPE-Bookmark-file-1>
        <!-- This is an automatically generated file.
             It will be read and overwritten.
             DO NOT EDIT! -->
        <META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
        <TITLE>Bookmarks</TITLE>
        <H1>Bookmarks</H1>
        <DL><p>
            <DT><H3 ADD_DATE="1699990000" LAST_MODIFIED="1700001000" PERSONAL_TOOLBAR_FOLDER="true">Bookmarks bar</H3>
            <DL><p>
                <DT><A HREF="https://github.com/" ADD_DATE="1699990100" ICON="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==">GitHub</A>
                <DT><H3 ADD_DATE="1699990200" LAST_MODIFIED="1699990900">Work</H3>
                <DL><p>
                    <DT><A HREF="https://example.atlassian.net/jira/software/projects/CAIRN/boards/1" ADD_DATE="1699990300">Jira &#8211; Sprint board</A>
                    <DT><H3 ADD_DATE="1699990400" LAST_MODIFIED="1699990500">Docs</H3>
                    <DL><p>
                        <DT><A HREF="https://docs.swift.org/swift-book/" ADD_DATE="1699990450">The Swift Programming Language</A>
                    </DL><p>
                    <DT><H3 ADD_DATE="1699990600" LAST_MODIFIED="0">Archive</H3>
                    <DL><p>
                    </DL><p>
                </DL><p>
                <DT><A HREF="https://www.youtube.com/watch?v=dQw4w9WgXcQ&amp;t=42s" ADD_DATE="1699990700">Rick Astley - Never Gonna Give You Up (Official Music Video) &#39;87</A>
            </DL><p>
            <DT><H3 ADD_DATE="1699980000" LAST_MODIFIED="1700002000">Other bookmarks</H3>
            <DL><p>
                <DT><A HREF="https://en.wikipedia.org/wiki/Main_Page" ADD_DATE="1699980100">Wikipedia, the free encyclopedia</A>
                <DT><A HREF="https://example.de/caf%C3%A9?x=1&amp;y=2" ADD_DATE="1699980200">Café &amp; Bäckerei 🥐</A>
            </DL><p>
            <DT><H3 ADD_DATE="1699970000" LAST_MODIFIED="1699970100">Mobile bookmarks</H3>
            <DL><p>
                <DT><A HREF="https://maps.google.com/" ADD_DATE="1699970050">Google Maps</A>
            </DL><p>
        </DL><p>

        """#
}
