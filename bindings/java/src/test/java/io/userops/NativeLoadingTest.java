package io.userops;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.NativeLibrary;
import java.io.File;
import org.junit.jupiter.api.Test;

/** Where libuserops came from: the jar's resources unless -Djna.library.path names a directory. */
class NativeLoadingTest {
    @Test
    void loadsFromTheJarWithoutALibraryPath() {
        assertNotNull(Engine.version()); // loads the library
        File file = NativeLibrary.getInstance("userops").getFile();
        assertNotNull(file);
        String dir = System.getProperty("jna.library.path");
        if (dir == null) {
            // JNA extracts a bundled library to a temporary file (jna*.tmp or similar), not target/
            assertTrue(!file.getPath().contains("/target/debug/") && !file.getPath().contains("/target/release/"),
                "loaded " + file + " although no library path was given");
        } else {
            assertTrue(file.getAbsolutePath().startsWith(new File(dir).getAbsolutePath()), file + " not under " + dir);
        }
    }
}
